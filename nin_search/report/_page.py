"""The page frame shared by the reports: style, tables, figures, head and tail."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.offline

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
pre.answer { background: #f6f8fa; padding: 1em; white-space: pre-wrap; line-height: 1.4; }
"""


def table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, text_columns: Sequence[int] = ()
) -> str:
    """An HTML table; every cell is escaped; columns in ``text_columns`` align left."""
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)

    def cell(column: int, value: Any) -> str:
        attribute = ' class="text"' if column in text_columns else ""
        return f"<td{attribute}>{html.escape(str(value))}</td>"

    body = "".join(
        "<tr>" + "".join(cell(column, value) for column, value in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_html(figure: go.Figure, name: str) -> str:
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"figure-{name}",
        default_width="100%",
        default_height=f"{figure.layout.height or 500}px",
    )


def page_head(title: str) -> list[str]:
    """The page up to ``<body>`` and its ``<h1>``, with plotly.js inline; ``title`` is escaped."""
    title = html.escape(title)
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        f"<style>{STYLE}</style>",
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>{title}</h1>",
    ]
