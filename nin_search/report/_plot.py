"""Drawing: figure data -> plotly figures. Every figure says why when it is empty."""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Sequence

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from nin_search.records import LATENCY_MS, MACS, PARAMS, TrialRecord
from nin_search.report._data import AccuracyGroup, CostInfo, CostPoint, MlpDepthInfo, MlpWidthInfo
from nin_search.report._trials import NO_COMPLETED_TRIALS, completed_trials
from nin_search.report._verdicts import StageVerdict, interval_text
from nin_search.vocabulary import MLP, PLAIN

_COLORS = {PLAIN: "#636efa", MLP: "#ef553b"}
_BASELINE_SYMBOLS = ("star", "diamond", "square", "triangle-up")
_BASELINE_COLORS = ("#00a087", "#ab63fa", "#ffa15a", "#19d3f3")  # each label in its marker's
# Each baseline's label above or below its marker, so that two close baselines' labels
# never run into each other.
_BASELINE_TEXT_POSITIONS = ("top left", "bottom left", "top right", "bottom right")


ACCURACY_AXIS = "validation accuracy"
# Accuracy is a fraction in the data, shown as a percentage, as the tables and the answer do.
_PERCENT_TICKS = ".1~%"  # 0.98 -> 98%, 0.975 -> 97.5%
_PERCENT_HOVER = ".2%"


def accuracy_yaxis(figure: go.Figure, values: Sequence[float] = (), *, title: str = "") -> None:
    """Shows the y axis of ``figure`` as accuracy in percent. With ``values``, the range
    spans them with a margin: plotly stretches a range of equal values (one trial, or every
    trial at one accuracy) far past 100%."""
    figure.update_yaxes(
        title=title or ACCURACY_AXIS, tickformat=_PERCENT_TICKS, hoverformat=_PERCENT_HOVER
    )
    finite = [value for value in values if math.isfinite(value)]
    if finite:
        low, high = min(finite), max(finite)
        margin = max(0.005, 0.08 * (high - low))
        figure.update_yaxes(range=[low - margin, high + margin])


def accuracy_target(study: optuna.Study) -> dict:
    """Optuna's plots and importances of a multi-objective study draw its accuracy."""
    if len(study.directions) == 1:
        return {}
    return {"target": lambda trial: trial.values[0], "target_name": "accuracy"}


def note_figure(title: str, note: str) -> go.Figure:
    """An empty figure that says why it is empty."""
    figure = go.Figure()
    figure.add_annotation(text=note, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    figure.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, height=300)
    return figure


def plot_stage_verdicts(verdicts: Sequence[StageVerdict]) -> go.Figure:
    """Completed-trial accuracies per type per stage, each stage annotated with its verdict.

    Args:
        verdicts: From :func:`get_stage_verdicts`.
    """
    title = "Plain conv vs MLP conv per stage (completed trials)"
    if not any(verdict.n_plain + verdict.n_mlp for verdict in verdicts):
        return note_figure(title, NO_COMPLETED_TRIALS)
    figure = go.Figure()
    for kind, label in ((PLAIN, "plain conv"), (MLP, "MLP conv")):
        x, y = [], []
        for verdict in verdicts:
            values = verdict.plain_accuracies if kind == PLAIN else verdict.mlp_accuracies
            x += [f"stage {verdict.stage}"] * len(values)
            y += values
        figure.add_trace(
            go.Box(x=x, y=y, name=label, boxpoints="all", jitter=0.4, marker_color=_COLORS[kind])
        )
    for verdict in verdicts:
        detail = interval_text(verdict)
        figure.add_annotation(
            x=f"stage {verdict.stage}",
            y=1.0,
            yref="paper",
            yanchor="bottom",
            showarrow=False,
            text=verdict.verdict + (f"<br>{detail}" if detail else ""),
        )
    figure.update_layout(title=dict(text=title, y=0.98), boxmode="group", margin=dict(t=120))
    accuracies = [a for v in verdicts for a in (*v.plain_accuracies, *v.mlp_accuracies)]
    accuracy_yaxis(figure, accuracies)
    return figure


def _box_figure(
    title: str, x_title: str, traces: list[tuple[str, list[AccuracyGroup]]], labels: dict[int, str]
) -> go.Figure:
    if not traces:
        return note_figure(title, NO_COMPLETED_TRIALS)
    figure = go.Figure()
    for name, groups in traces:
        x = [
            labels.get(group.value, str(group.value)) for group in groups for _ in group.accuracies
        ]
        y = [accuracy for group in groups for accuracy in group.accuracies]
        figure.add_trace(go.Box(x=x, y=y, name=name, boxpoints="all", jitter=0.4, boxmean=True))
    order = sorted({group.value for _, groups in traces for group in groups})
    figure.update_layout(title=title, boxmode="group")
    accuracy_yaxis(figure, [a for _, groups in traces for g in groups for a in g.accuracies])
    figure.update_xaxes(
        title=x_title,
        type="category",
        categoryorder="array",
        categoryarray=[labels.get(value, str(value)) for value in order],
    )
    return figure


def plot_mlp_depth(depth_info: Sequence[MlpDepthInfo]) -> go.Figure:
    """Accuracy by number of 1x1 layers, one box group per stage.

    Args:
        depth_info: From :func:`get_mlp_depth_info`.
    """
    traces = [(f"stage {info.stage}", info.groups) for info in depth_info]
    return _box_figure(
        "Effect of MLP depth (number of 1x1 layers)", "1x1 layers", traces, {0: "0 (plain)"}
    )


def plot_mlp_width(width_info: Sequence[MlpWidthInfo]) -> go.Figure:
    """Accuracy by 1x1 layer width, one box group per (stage, layer).

    Args:
        width_info: From :func:`get_mlp_width_info`.
    """
    traces = [(f"stage {info.stage}, 1x1 layer {info.layer}", info.groups) for info in width_info]
    return _box_figure("Effect of 1x1 layer width (MLP stages)", "1x1 width", traces, {})


_COST_LABELS = {
    PARAMS: "parameters",
    MACS: "MACs per image",
    LATENCY_MS: "latency (ms per forward pass)",
}


def plot_cost(cost_info: CostInfo, *, cost: str = "params") -> go.Figure:
    """Accuracy against cost (log x for params and MACs), with the front of that pair (the
    trials no other beats on both accuracy and this cost; in a study with other objectives, not
    its Pareto front) and the baselines marked.

    Args:
        cost_info: From :func:`get_cost_info`.
        cost: ``"params"``, ``"macs"`` or ``"latency_ms"``.
    """
    if cost not in _COST_LABELS:
        raise ValueError(f"cost must be 'params', 'macs' or 'latency_ms', but got cost={cost!r}.")
    label = _COST_LABELS[cost]
    title = f"Accuracy vs {label}"
    points = [point for point in cost_info.points if (getattr(point, cost) or 0) > 0]
    if not points:
        note = NO_COMPLETED_TRIALS if not cost_info.points else f"no trial recorded {cost}"
        return note_figure(title, note)

    figure = go.Figure()
    others = [point for point in points if point.baseline is None]
    figure.add_trace(
        go.Scatter(
            x=[getattr(point, cost) for point in others],
            y=[point.accuracy for point in others],
            mode="markers",
            name="trials",
            marker=dict(color="#aab2bd", size=8),
            hovertext=[_cost_hover(point) for point in others],
        )
    )
    by_number = {point.number: point for point in points}
    front_numbers = {
        PARAMS: cost_info.params_front,
        MACS: cost_info.macs_front,
        LATENCY_MS: cost_info.latency_front,
    }[cost]
    front = [by_number[number] for number in front_numbers if number in by_number]
    figure.add_trace(
        go.Scatter(
            x=[getattr(point, cost) for point in front],
            y=[point.accuracy for point in front],
            mode="lines+markers",
            line_shape="hv",
            name=f"front: accuracy vs {cost}",  # this pair's front, not the study's
            marker=dict(color="#ef553b", size=10),
            hovertext=[_cost_hover(point) for point in front],
        )
    )
    _add_baseline_traces(figure, points, cost=cost)
    figure.update_layout(title=title)
    accuracy_yaxis(figure, [point.accuracy for point in points])
    if cost == "latency_ms":
        figure.update_xaxes(title=label)
    else:
        figure.update_xaxes(type="log", title=f"{label} (log scale)")
    return figure


def _cost_hover(point: CostPoint) -> str:
    summary = html.escape(point.arch_summary or "")
    return f"trial {point.number}<br>{summary}"


def _add_baseline_traces(figure: go.Figure, points: list[CostPoint], *, cost: str) -> None:
    """One labelled marker trace per baseline (``nin``, ``plain``), in name order, each label
    on another side of its marker."""
    baselines = sorted({point.baseline for point in points if point.baseline is not None})
    for index, baseline in enumerate(baselines):
        marked = [point for point in points if point.baseline == baseline]
        figure.add_trace(
            go.Scatter(
                x=[getattr(point, cost) for point in marked],
                y=[point.accuracy for point in marked],
                mode="markers+text",
                text=[f"{baseline} baseline"] * len(marked),
                textposition=_BASELINE_TEXT_POSITIONS[index % len(_BASELINE_TEXT_POSITIONS)],
                cliponaxis=False,  # a label near the border is drawn whole
                name=f"{baseline} baseline",
                textfont=dict(color=_BASELINE_COLORS[index % len(_BASELINE_COLORS)]),
                marker=dict(
                    symbol=_BASELINE_SYMBOLS[index % len(_BASELINE_SYMBOLS)],
                    color=_BASELINE_COLORS[index % len(_BASELINE_COLORS)],
                    size=14,
                ),
                hovertext=[_cost_hover(point) for point in marked],
            )
        )


class _SharedTrialsStudy(optuna.Study):
    """A study whose ``trials`` are not deep-copied on every read: Optuna's importances read
    ``study.trials`` once per parameter (28 copies of every trial; 19 s of a 2,000-trial
    report). Only for the private copy below, which nothing writes to."""

    @property
    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.get_trials(deepcopy=False)


def _importance_study(study: optuna.Study) -> optuna.Study:
    """The trials importances rest on, as a study that maximises accuracy: completed, within
    the cost limits (an over-limit trial's 0.0 is a placeholder), finite accuracy. With several
    objectives Optuna's evaluator would rank params for the Pareto front, or for a *low*
    ``target``; this asks what makes accuracy high."""
    copy = optuna.create_study(direction="maximize")
    copy.__class__ = _SharedTrialsStudy
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        record = TrialRecord.from_trial(trial)
        if record.feasible and record.accuracy is not None and trial.distributions:
            copy.add_trial(
                optuna.trial.create_trial(
                    value=record.accuracy, params=trial.params, distributions=trial.distributions
                )
            )
    return copy


def plot_param_importances(study: optuna.Study) -> go.Figure:
    """Optuna's hyperparameter importances, or a note when they cannot be computed.

    Importances need enough completed trials; with too few, the evaluator fails or warns, and
    the figure says so instead of raising. The title gives the number of completed trials the
    importances rest on and Optuna's warning, if any; the figure is as tall as its bars need
    for every one to be labelled.

    Args:
        study: The study.
    """
    title = "Hyperparameter importances"
    if not completed_trials(study):
        return note_figure(title, NO_COMPLETED_TRIALS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            copy = _importance_study(study)
            figure = optuna.visualization.plot_param_importances(copy, target_name="accuracy")
        except Exception as error:
            return note_figure(title, f"importances unavailable: {error}")
    n = len(copy.trials)
    text = f"{title} for accuracy, from {n} completed trial{'s' if n != 1 else ''}"
    if caught:
        note = html.escape(str(caught[0].message))
        text += f"<br><sup>note: {note}</sup>"
    names = [name for trace in figure.data for name in (trace.y or ())]
    figure.update_layout(
        title=dict(text=text),
        height=max(300, 160 + 24 * len(names)),
        margin=dict(t=110),
    )
    figure.update_yaxes(tickmode="array", tickvals=names, ticktext=names)  # every bar labelled
    return figure
