"""The report page: one self-contained HTML file (plotly.js inline, every user text escaped)."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from nin_search.analysis import (
    Answer,
    find_ablation_study,
    get_answer,
    interval_range,
    percent_label,
)
from nin_search.records import PARAMS
from nin_search.report._analysis_html import analysis_html, answer_html
from nin_search.report._data import (
    BestArchitecture,
    ObjectivesInfo,
    get_best_architecture_table,
    get_cost_info,
    get_mlp_depth_info,
    get_mlp_width_info,
    get_objectives_info,
)
from nin_search.report._page import figure_html, page_head, table
from nin_search.report._plot import (
    ACCURACY_AXIS,
    accuracy_target,
    accuracy_yaxis,
    note_figure,
    plot_cost,
    plot_mlp_depth,
    plot_mlp_width,
    plot_param_importances,
    plot_stage_verdicts,
)
from nin_search.report._trials import NO_COMPLETED_TRIALS, completed_trials
from nin_search.report._verdicts import StageVerdict, get_stage_verdicts, verdict_lines
from nin_search.trials import states_text

if TYPE_CHECKING:
    import plotly.graph_objects as go


def _format_accuracy(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _verdict_table(verdicts: Sequence[StageVerdict]) -> str:
    if not verdicts:
        return f"<p>{NO_COMPLETED_TRIALS}</p>"
    rows = []
    for verdict in verdicts:
        interval = "–"
        if verdict.confidence_interval is not None:
            interval = interval_range(tuple(bound * 100 for bound in verdict.confidence_interval))
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
    return table(header, rows, text_columns=(1,))


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
    stages = table(header, rows, text_columns=(1, 4, 5))
    totals = table(
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


def _objective_value(name: str, value: float) -> str:
    if name == "accuracy":
        return _format_accuracy(value)
    if name == "latency_ms":
        return f"{value:.3f} ms"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def _objectives_html(objectives: ObjectivesInfo | None) -> str:
    """One line naming the objectives of a multi-objective study (none for one objective)."""
    if objectives is None:
        return ""
    named = ", ".join(
        f"{name} ({direction})"
        for name, direction in zip(objectives.names, objectives.directions, strict=True)
    )
    return (
        f"<p>Objectives: {html.escape(named)}. With several objectives there is no single best "
        f"trial but a Pareto front of {len(objectives.front)} trial(s), listed under "
        '<a href="#pareto-front">Pareto front</a>.</p>'
    )


def _best_html(study: optuna.Study, objectives: ObjectivesInfo | None) -> list[str]:
    """The "Best architecture" section; with several objectives, the Pareto front first and
    which of its trials the architecture is."""
    best = get_best_architecture_table(study)
    if objectives is None:
        return ["<h2>Best architecture</h2>", _best_table(best)]
    with_params = PARAMS not in objectives.names  # else it is a column already
    header = ["trial", *objectives.names, *[PARAMS] * with_params, "summary"]
    rows = [
        [
            trial.number,
            *(
                _objective_value(name, value)
                for name, value in zip(objectives.names, trial.values, strict=True)
            ),
            *["–" if trial.params is None else f"{trial.params:,}"] * with_params,
            trial.arch_summary or "–",
        ]
        for trial in objectives.front
    ]
    parts = [
        '<h2 id="pareto-front">Pareto front</h2>',
        "<p>The completed trials within the cost limits that no other such trial matches or "
        "beats on every objective while beating it on one "
        f"({html.escape(', '.join(objectives.names))}), most accurate first.</p>",
        table(header, rows, text_columns=(len(header) - 1,))
        if rows
        else f"<p>{NO_COMPLETED_TRIALS}</p>",
        "<h2>Best architecture</h2>",
    ]
    if best is not None:
        others = ", ".join(objectives.names[1:])
        parts.append(
            f"<p>Trial {best.number}: the most accurate trial of the Pareto front. The other "
            f"front trials give up accuracy for a lower cost ({html.escape(others)}); "
            "<code>nin-search export --trial N</code> exports any of them.</p>"
        )
    parts.append(_best_table(best))
    return parts


def write_report(
    study: optuna.Study,
    path: str | os.PathLike[str],
    *,
    answer: Answer | None = None,
    note: str | None = None,
) -> list[StageVerdict]:
    """Writes the study report as one self-contained HTML file (plotly.js inline, no network).

    The page opens with the answer (:func:`nin_search.analysis.get_answer`): paired ablations
    from the companion study ``<name>:ablation`` in the same storage (when there is one) and
    the complexity-normalised design-space verdict, with their figures; then the naive
    per-stage comparison and the other figures.

    Args:
        study: The study.
        path: The HTML file to write (overwritten).
        answer: The answer to show; by default computed from ``study`` and its companion
            ablation study.
        note: A line (plain text) to show under the title, e.g. why this page was written.

    Returns:
        The (naive) stage verdicts shown in the report.
    """
    if answer is None:
        answer = get_answer(study, find_ablation_study(study))
    verdicts = get_stage_verdicts(study)
    completed = completed_trials(study)
    objectives = get_objectives_info(study)
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in verdict_lines(verdicts))
    parts = [
        *page_head(f"nin-search report: {study.study_name}"),
        "" if note is None else f"<p><i>{html.escape(note)}</i></p>",
        f"<p>Trials: {html.escape(states_text(study.get_trials(deepcopy=False)))}.</p>",
        _objectives_html(objectives),
        *answer_html(answer),
        *analysis_html(answer),
        "<h2>Naive comparison: every completed trial, per stage</h2>",
        "<p>Confounded: the sampler chose these trials, and an MLP conv adds parameters. "
        "The answer above controls both; this is kept for contrast.</p>",
        f"<ul>{lines}</ul>" if completed else f"<p>{NO_COMPLETED_TRIALS}</p>",
        _verdict_table(verdicts),
        "<p>Verdicts compare completed trials with Welch's t-interval of the difference of "
        "means. The common epoch is the largest epoch every completed or pruned trial of the "
        "stage reached; the means there include pruned trials.</p>",
        *(figure_html(figure, name) for name, figure in _study_figures(study, verdicts)),
        *_best_html(study, objectives),
        "</body></html>",
    ]
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(parts))
    return verdicts


def _study_figures(
    study: optuna.Study, verdicts: list[StageVerdict]
) -> list[tuple[str, go.Figure]]:
    """The report's figures after the answer, by anchor name: verdicts, MLP depth and width,
    cost fronts, optimisation history, intermediate values, importances."""
    has_intermediate = any(
        trial.intermediate_values
        for trial in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        )
    )
    cost_info = get_cost_info(study)
    return [
        ("verdicts", plot_stage_verdicts(verdicts)),
        ("depth", plot_mlp_depth(get_mlp_depth_info(study))),
        ("width", plot_mlp_width(get_mlp_width_info(study))),
        ("cost-params", plot_cost(cost_info, cost="params")),
        ("cost-macs", plot_cost(cost_info, cost="macs")),
        *(
            [("cost-latency", plot_cost(cost_info, cost="latency_ms"))]
            if any(point.latency_ms is not None for point in cost_info.points)
            else []
        ),
        (
            "history",
            _history(study)
            if completed_trials(study)
            else note_figure("Optimization history", NO_COMPLETED_TRIALS),
        ),
        (
            "intermediate-values",
            _intermediate_values(study)
            if has_intermediate
            else note_figure("Intermediate values", "no intermediate values yet"),
        ),
        ("importances", plot_param_importances(study)),
    ]


def _history(study: optuna.Study) -> go.Figure:
    """Optuna's optimization history, its accuracy axis in percent like the other figures."""
    figure = optuna.visualization.plot_optimization_history(study, **accuracy_target(study))
    accuracy_yaxis(figure)
    return figure


def _intermediate_values(study: optuna.Study) -> go.Figure:
    """Optuna's intermediate values: each trial's validation accuracy after each epoch."""
    figure = optuna.visualization.plot_intermediate_values(study)
    accuracy_yaxis(figure, title=f"{ACCURACY_AXIS} after the epoch")
    figure.update_xaxes(title="epoch")
    return figure
