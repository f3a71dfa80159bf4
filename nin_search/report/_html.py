"""The report page: one self-contained HTML file (plotly.js inline, every user text escaped)."""

from __future__ import annotations

import html
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import optuna
import plotly.graph_objects as go
import plotly.offline
from optuna.trial import TrialState

from nin_search.report._data import (
    BestArchitecture,
    get_best_architecture_table,
    get_cost_info,
    get_mlp_depth_info,
    get_mlp_width_info,
)
from nin_search.report._plot import (
    note_figure,
    plot_cost,
    plot_mlp_depth,
    plot_mlp_width,
    plot_param_importances,
    plot_stage_verdicts,
)
from nin_search.report._trials import NO_COMPLETED_TRIALS, completed_trials
from nin_search.report._verdicts import (
    StageVerdict,
    get_stage_verdicts,
    percent_label,
    verdict_lines,
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
"""


def _accuracy_target(study: optuna.Study) -> dict:
    """Optuna's plots need a target to draw one objective of a multi-objective study."""
    if len(study.directions) == 1:
        return {}
    return {"target": lambda trial: trial.values[0], "target_name": "accuracy"}


def _format_accuracy(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _table(
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


def _verdict_table(verdicts: Sequence[StageVerdict]) -> str:
    if not verdicts:
        return f"<p>{NO_COMPLETED_TRIALS}</p>"
    rows = []
    for verdict in verdicts:
        interval = "–"
        if verdict.confidence_interval is not None:
            low, high = (bound * 100 for bound in verdict.confidence_interval)
            interval = f"{low:+.1f}..{high:+.1f}"
        equal = verdict.equal_epoch
        rows.append(
            [
                verdict.stage,
                verdict.verdict,
                verdict.n_plain,
                verdict.n_mlp,
                _format_accuracy(verdict.plain_mean),
                _format_accuracy(verdict.mlp_mean),
                "–" if verdict.difference is None else f"{verdict.difference * 100:+.1f}",
                interval,
                "–" if equal is None else equal.epoch,
                "–" if equal is None else _format_accuracy(equal.plain_mean),
                "–" if equal is None else _format_accuracy(equal.mlp_mean),
                "–" if equal is None else equal.n_pruned,
            ]
        )
    percent = percent_label(verdicts[0].confidence)
    header = [
        "stage",
        "verdict (completed trials)",
        "plain n",
        "mlp n",
        "plain mean",
        "mlp mean",
        "mlp − plain (points)",
        f"{percent} CI (points)",
        "common epoch",
        "plain mean at epoch",
        "mlp mean at epoch",
        "pruned trials at epoch",
    ]
    return _table(header, rows, text_columns=(1,))


def _best_table(best: BestArchitecture | None) -> str:
    if best is None:
        return f"<p>{NO_COMPLETED_TRIALS}</p>"
    rows = [
        [
            row.stage,
            row.kind,
            "–" if row.kernel_size is None else f"{row.kernel_size}x{row.kernel_size}",
            "–" if row.width is None else row.width,
            "-".join(str(width) for width in row.mlp_widths) or "–",
            row.pool or "–",
        ]
        for row in best.rows
    ]
    header = ["stage", "type", "kernel", "width", "1x1 widths", "pool"]
    stages = _table(header, rows, text_columns=(1, 4, 5))
    totals = _table(
        ["trial", "accuracy", "params", "MACs", "summary"],
        [
            [
                best.number,
                _format_accuracy(best.accuracy),
                "–" if best.params is None else f"{best.params:,}",
                "–" if best.macs is None else f"{best.macs:,}",
                best.arch_summary or "–",
            ]
        ],
        text_columns=(4,),
    )
    return stages + totals


def _state_counts(study: optuna.Study) -> str:
    counts: dict[str, int] = defaultdict(int)
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] += 1
    return ", ".join(f"{count} {state}" for state, count in sorted(counts.items())) or "no trials"


def _figure_html(figure: go.Figure, name: str) -> str:
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"figure-{name}",
        default_width="100%",
        default_height=f"{figure.layout.height or 500}px",
    )


def write_report(study: optuna.Study, path: str | os.PathLike[str]) -> list[StageVerdict]:
    """Writes the study report as one self-contained HTML file (plotly.js inline, no network).

    Args:
        study: The study.
        path: The HTML file to write (overwritten).

    Returns:
        The stage verdicts shown in the report.
    """
    verdicts = get_stage_verdicts(study)
    completed = completed_trials(study)
    has_intermediate = any(
        trial.intermediate_values
        for trial in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        )
    )
    cost_info = get_cost_info(study)
    figures = [
        ("verdicts", plot_stage_verdicts(verdicts)),
        ("depth", plot_mlp_depth(get_mlp_depth_info(study))),
        ("width", plot_mlp_width(get_mlp_width_info(study))),
        ("cost-params", plot_cost(cost_info, cost="params")),
        ("cost-macs", plot_cost(cost_info, cost="macs")),
        (
            "history",
            optuna.visualization.plot_optimization_history(study, **_accuracy_target(study))
            if completed
            else note_figure("Optimization history", NO_COMPLETED_TRIALS),
        ),
        (
            "intermediate-values",
            optuna.visualization.plot_intermediate_values(study)
            if has_intermediate
            else note_figure("Intermediate values", "no intermediate values yet"),
        ),
        ("importances", plot_param_importances(study)),
    ]
    study_name = html.escape(study.study_name)
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in verdict_lines(verdicts))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>nin-search report: {study_name}</title>",
        f"<style>{_STYLE}</style>",
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>nin-search report: {study_name}</h1>",
        f"<p>Trials: {html.escape(_state_counts(study))}.</p>",
        "<h2>Does MLP conv help? (per stage)</h2>",
        f"<ul>{lines}</ul>" if completed else f"<p>{NO_COMPLETED_TRIALS}</p>",
        _verdict_table(verdicts),
        "<p>Verdicts compare completed trials with a bootstrap interval of the difference of "
        "means. The common epoch is the largest epoch every completed or pruned trial of the "
        "stage reached; the means there include pruned trials.</p>",
        *(_figure_html(figure, name) for name, figure in figures),
        "<h2>Best architecture</h2>",
        _best_table(get_best_architecture_table(study)),
        "</body></html>",
    ]
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(parts))
    return verdicts
