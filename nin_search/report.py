"""The study report: study -> figure data (plain structures) -> plotly figures -> HTML.

Every figure follows Optuna's visualization pattern: a ``get_..._info`` function turns the study
into NamedTuples and lists (tested by value), and a ``plot_...`` function draws them. The
question the report answers: for each stage, does an MLP conv (NIN block) beat a plain conv?

Stage types are read from the ``arch`` user attr (``ArchSpec.to_dict()``) when a trial has one,
so fixed (non-searched) spaces work too; otherwise from the ``s{i}_...`` params. Accuracies are
completed trials' values; trials with a non-finite value are left out. Baseline trials (user attr
``baseline``) count like any other trial and are highlighted in the cost figures.

Nothing here prints.
"""

from __future__ import annotations

import html
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import optuna
import plotly.graph_objects as go
import plotly.offline
from optuna.trial import FrozenTrial, TrialState

from nin_search.spec import ArchSpec, SpecError

__all__ = [
    "AccuracyGroup",
    "BestArchitecture",
    "BestStageRow",
    "CostInfo",
    "CostPoint",
    "EqualEpochComparison",
    "MlpDepthInfo",
    "MlpWidthInfo",
    "StageVerdict",
    "get_best_architecture_table",
    "get_cost_info",
    "get_mlp_depth_info",
    "get_mlp_width_info",
    "get_stage_verdicts",
    "plot_cost",
    "plot_mlp_depth",
    "plot_mlp_width",
    "plot_param_importances",
    "plot_stage_verdicts",
    "verdict_lines",
    "write_report",
]

NO_COMPLETED_TRIALS = "no completed trials yet"


# ----------------------------------------------------------------------------------------------
# Figure data
# ----------------------------------------------------------------------------------------------


class EqualEpochComparison(NamedTuple):
    """Plain vs MLP validation accuracy at one epoch every finished trial reached.

    ``epoch`` is the largest epoch at which every completed or pruned trial of the stage (both
    types) reported a finite value, so pruned trials are compared at equal training length.
    Means are ``None`` for a type with no finished trial.
    """

    epoch: int
    plain_mean: float | None
    mlp_mean: float | None
    n_plain: int
    n_mlp: int
    n_pruned: int


class StageVerdict(NamedTuple):
    """Does an MLP conv help at one stage? Accuracies are completed trials' values.

    ``difference`` is ``mlp_mean - plain_mean``; ``confidence_interval`` is the bootstrap
    interval of that difference (``None`` when either type has fewer than ``min_trials``).
    """

    stage: int
    plain_accuracies: list[float]
    mlp_accuracies: list[float]
    n_plain: int
    n_mlp: int
    plain_mean: float | None
    mlp_mean: float | None
    difference: float | None
    confidence_interval: tuple[float, float] | None
    confidence: float
    verdict: str
    equal_epoch: EqualEpochComparison | None


class AccuracyGroup(NamedTuple):
    """Completed-trial accuracies that share one value (an MLP depth or a 1x1 width)."""

    value: int
    count: int
    mean: float
    accuracies: list[float]


class MlpDepthInfo(NamedTuple):
    """Accuracy by number of 1x1 layers at one stage (depth 0 is a plain stage)."""

    stage: int
    groups: list[AccuracyGroup]


class MlpWidthInfo(NamedTuple):
    """Accuracy by width of one 1x1 layer (``layer`` counts from 1) of one stage's MLP convs."""

    stage: int
    layer: int
    groups: list[AccuracyGroup]


class CostPoint(NamedTuple):
    """One completed trial: accuracy and cost (``None`` where the user attr is missing)."""

    number: int
    accuracy: float
    params: int | None
    macs: int | None
    baseline: str | None
    arch_summary: str | None


class CostInfo(NamedTuple):
    """Completed trials plus the Pareto fronts (max accuracy, min cost), by trial number.

    Front numbers are sorted by increasing cost.
    """

    points: list[CostPoint]
    params_front: list[int]
    macs_front: list[int]


class BestStageRow(NamedTuple):
    """One stage of the best architecture; ``kind`` is ``"plain"`` or ``"mlp"``."""

    stage: int
    kind: str
    kernel_size: int | None
    width: int | None
    mlp_widths: tuple[int, ...]
    pool: str | None


class BestArchitecture(NamedTuple):
    """The best trial's stages, cost and accuracy."""

    number: int
    accuracy: float
    params: int | None
    macs: int | None
    arch_summary: str | None
    rows: list[BestStageRow]


def _trial_stages(trial: FrozenTrial) -> list[BestStageRow]:
    """The trial's stages, from the ``arch`` user attr if valid, else from its params."""
    arch = trial.user_attrs.get("arch")
    if isinstance(arch, dict):
        try:
            spec = ArchSpec.from_dict(arch)
        except (SpecError, TypeError):
            spec = None
        if spec is not None:
            return [
                BestStageRow(
                    index, stage.kind, stage.kernel_size, stage.width, stage.mlp_widths, stage.pool
                )
                for index, stage in enumerate(spec.stages)
            ]
    params = trial.params
    num_stages = params.get("num_stages")
    if not isinstance(num_stages, int):
        num_stages = 0
        while f"s{num_stages}_type" in params:
            num_stages += 1
    rows = []
    for index in range(num_stages):
        prefix = f"s{index}"
        kind = params.get(f"{prefix}_type")
        if kind not in ("plain", "mlp"):
            return rows
        depth = params.get(f"{prefix}_mlp_depth", 0) if kind == "mlp" else 0
        mlp_widths = tuple(
            params.get(f"{prefix}_mlp{layer}_width") for layer in range(1, depth + 1)
        )
        last = index == num_stages - 1
        pool = params.get(f"{prefix}_pool", "none" if last else None)
        rows.append(
            BestStageRow(
                index,
                kind,
                params.get(f"{prefix}_kernel_size"),
                params.get(f"{prefix}_width"),
                mlp_widths,
                pool,
            )
        )
    return rows


def _completed_trials(study: optuna.Study) -> list[FrozenTrial]:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [trial for trial in trials if trial.value is not None and math.isfinite(trial.value)]


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _bootstrap_interval(
    plain: list[float], mlp: list[float], *, n_bootstrap: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(mlp) - mean(plain)``, resampling each group."""
    generator = np.random.default_rng(seed)
    plain_values, mlp_values = np.asarray(plain), np.asarray(mlp)
    plain_indices = generator.integers(0, len(plain_values), size=(n_bootstrap, len(plain_values)))
    mlp_indices = generator.integers(0, len(mlp_values), size=(n_bootstrap, len(mlp_values)))
    differences = mlp_values[mlp_indices].mean(axis=1) - plain_values[plain_indices].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return float(low), float(high)


def _equal_epoch_comparison(
    trials_by_kind: dict[str, list[FrozenTrial]],
) -> EqualEpochComparison | None:
    finished = [
        (kind, trial)
        for kind in ("plain", "mlp")
        for trial in trials_by_kind[kind]
        if any(math.isfinite(value) for value in trial.intermediate_values.values())
    ]
    if not finished:
        return None
    common_steps = set.intersection(
        *(
            {step for step, value in trial.intermediate_values.items() if math.isfinite(value)}
            for _, trial in finished
        )
    )
    if not common_steps:
        return None
    epoch = max(common_steps)
    values: dict[str, list[float]] = {"plain": [], "mlp": []}
    for kind, trial in finished:
        values[kind].append(trial.intermediate_values[epoch])
    return EqualEpochComparison(
        epoch=epoch,
        plain_mean=_mean(values["plain"]),
        mlp_mean=_mean(values["mlp"]),
        n_plain=len(values["plain"]),
        n_mlp=len(values["mlp"]),
        n_pruned=sum(trial.state == TrialState.PRUNED for _, trial in finished),
    )


def _verdict(n_plain: int, n_mlp: int, interval: tuple[float, float] | None) -> str:
    if interval is None:
        return f"too few trials to tell (n_plain={n_plain}, n_mlp={n_mlp})"
    if interval[0] > 0:
        return "MLP conv helps"
    if interval[1] < 0:
        return "MLP conv hurts"
    return f"no clear evidence (n={n_plain + n_mlp})"


def get_stage_verdicts(
    study: optuna.Study,
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    min_trials: int = 5,
) -> list[StageVerdict]:
    """Compares plain and MLP conv stage by stage.

    The verdict uses completed trials: ``"MLP conv helps"`` when the bootstrap interval of
    ``mean(mlp) - mean(plain)`` lies entirely above 0, ``"MLP conv hurts"`` when entirely below,
    ``"no clear evidence (n=...)"`` otherwise, and ``"too few trials to tell (...)"`` when
    either type has fewer than ``min_trials`` trials. Pruned trials enter only the separate
    :class:`EqualEpochComparison`.

    Args:
        study: A study whose value is a validation accuracy in [0, 1].
        n_bootstrap: Number of bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the bootstrap; each stage uses it afresh, so results do not depend on
            other stages.
        min_trials: Completed trials each type needs before a verdict is given.

    Returns:
        One verdict per stage index seen in completed or pruned trials, in stage order.
    """
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be an integer >= 1, but got n_bootstrap={n_bootstrap}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), but got confidence={confidence}.")
    if isinstance(min_trials, bool) or not isinstance(min_trials, int) or min_trials < 1:
        raise ValueError(f"min_trials must be an integer >= 1, but got min_trials={min_trials}.")

    accuracies: dict[int, dict[str, list[float]]] = defaultdict(lambda: {"plain": [], "mlp": []})
    finished: dict[int, dict[str, list[FrozenTrial]]] = defaultdict(
        lambda: {"plain": [], "mlp": []}
    )
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    for trial in study.get_trials(deepcopy=False, states=states):
        for row in _trial_stages(trial):
            finished[row.stage][row.kind].append(trial)
            value = trial.value if trial.state == TrialState.COMPLETE else None
            if value is not None and math.isfinite(value):
                accuracies[row.stage][row.kind].append(float(value))

    verdicts = []
    for stage in sorted(finished):
        plain, mlp = accuracies[stage]["plain"], accuracies[stage]["mlp"]
        plain_mean, mlp_mean = _mean(plain), _mean(mlp)
        difference = None if plain_mean is None or mlp_mean is None else mlp_mean - plain_mean
        interval = None
        if len(plain) >= min_trials and len(mlp) >= min_trials:
            interval = _bootstrap_interval(
                plain, mlp, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
            )
        verdicts.append(
            StageVerdict(
                stage=stage,
                plain_accuracies=plain,
                mlp_accuracies=mlp,
                n_plain=len(plain),
                n_mlp=len(mlp),
                plain_mean=plain_mean,
                mlp_mean=mlp_mean,
                difference=difference,
                confidence_interval=interval,
                confidence=confidence,
                verdict=_verdict(len(plain), len(mlp), interval),
                equal_epoch=_equal_epoch_comparison(finished[stage]),
            )
        )
    return verdicts


def _groups(values_by_key: dict[int, list[float]]) -> list[AccuracyGroup]:
    return [
        AccuracyGroup(key, len(values), float(np.mean(values)), values)
        for key, values in sorted(values_by_key.items())
    ]


def get_mlp_depth_info(study: optuna.Study) -> list[MlpDepthInfo]:
    """Completed-trial accuracy by number of 1x1 layers (0 = plain), per stage.

    Args:
        study: The study.

    Returns:
        One entry per stage index, in order; groups sorted by depth.
    """
    by_stage: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for trial in _completed_trials(study):
        for row in _trial_stages(trial):
            by_stage[row.stage][len(row.mlp_widths)].append(float(trial.value))
    return [MlpDepthInfo(stage, _groups(by_stage[stage])) for stage in sorted(by_stage)]


def get_mlp_width_info(study: optuna.Study) -> list[MlpWidthInfo]:
    """Completed-trial accuracy by the width of each 1x1 layer of MLP stages.

    A trial counts once per (stage, layer) it has, grouped by that layer's width, which mirrors
    the ``s{stage}_mlp{layer}_width`` parameters.

    Args:
        study: The study.

    Returns:
        One entry per (stage, layer) seen, sorted; groups sorted by width.
    """
    by_layer: dict[tuple[int, int], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for trial in _completed_trials(study):
        for row in _trial_stages(trial):
            for layer, width in enumerate(row.mlp_widths, start=1):
                if width is not None:
                    by_layer[row.stage, layer][width].append(float(trial.value))
    return [
        MlpWidthInfo(stage, layer, _groups(by_layer[stage, layer]))
        for stage, layer in sorted(by_layer)
    ]


def _pareto_front(points: list[CostPoint], cost: str) -> list[int]:
    """Numbers of the points no other point beats (accuracy >=, cost <=, one strictly)."""
    costed = [point for point in points if getattr(point, cost) is not None]
    if not costed:
        return []
    accuracy = np.array([point.accuracy for point in costed])
    costs = np.array([getattr(point, cost) for point in costed], dtype=float)
    no_worse = (accuracy[:, None] >= accuracy[None, :]) & (costs[:, None] <= costs[None, :])
    better = (accuracy[:, None] > accuracy[None, :]) | (costs[:, None] < costs[None, :])
    dominated = (no_worse & better).any(axis=0)  # [i, j]: point i dominates point j
    front = [costed[index] for index in np.flatnonzero(~dominated)]
    front.sort(key=lambda point: (getattr(point, cost), -point.accuracy, point.number))
    return [point.number for point in front]


def _int_attr(trial: FrozenTrial, name: str) -> int | None:
    value = trial.user_attrs.get(name)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def get_cost_info(study: optuna.Study) -> CostInfo:
    """Accuracy against parameter count and MACs for completed trials, with Pareto fronts.

    Args:
        study: The study; ``params``, ``macs`` and ``baseline`` come from user attrs.

    Returns:
        Points in trial-number order and the fronts of (max accuracy, min params) and
        (max accuracy, min MACs); a trial missing a cost is left out of that front.
    """
    points = []
    for trial in _completed_trials(study):
        baseline = trial.user_attrs.get("baseline")
        summary = trial.user_attrs.get("arch_summary")
        points.append(
            CostPoint(
                number=trial.number,
                accuracy=float(trial.value),
                params=_int_attr(trial, "params"),
                macs=_int_attr(trial, "macs"),
                baseline=str(baseline) if baseline is not None else None,
                arch_summary=str(summary) if summary is not None else None,
            )
        )
    points.sort(key=lambda point: point.number)
    return CostInfo(points, _pareto_front(points, "params"), _pareto_front(points, "macs"))


def get_best_architecture_table(study: optuna.Study) -> BestArchitecture | None:
    """The stages of the study's best trial, with its cost and accuracy.

    Args:
        study: A single-objective study.

    Returns:
        The best architecture, or ``None`` when no trial has completed.
    """
    try:
        best = study.best_trial
    except ValueError:
        return None
    summary = best.user_attrs.get("arch_summary")
    return BestArchitecture(
        number=best.number,
        accuracy=float(best.value),
        params=_int_attr(best, "params"),
        macs=_int_attr(best, "macs"),
        arch_summary=str(summary) if summary is not None else None,
        rows=_trial_stages(best),
    )


def _percent_label(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def _interval_text(verdict: StageVerdict) -> str:
    """``+2.1 points, 95% CI +0.8..+3.3`` (points are accuracy percentage points)."""
    if verdict.difference is None:
        return ""
    text = f"{verdict.difference * 100:+.1f} points"
    if verdict.confidence_interval is not None:
        low, high = (bound * 100 for bound in verdict.confidence_interval)
        text += f", {_percent_label(verdict.confidence)} CI {low:+.1f}..{high:+.1f}"
    return text


def verdict_lines(verdicts: Sequence[StageVerdict]) -> list[str]:
    """One line per stage for the terminal.

    Args:
        verdicts: From :func:`get_stage_verdicts`.

    Returns:
        Lines like ``stage 0: MLP conv helps (+2.1 points, 95% CI +0.8..+3.3; plain n=9,
        mlp n=12)``; a stage with too few trials shows only its verdict.
    """
    lines = []
    for verdict in verdicts:
        if verdict.confidence_interval is None:
            lines.append(f"stage {verdict.stage}: {verdict.verdict}")
            continue
        counts = f"plain n={verdict.n_plain}, mlp n={verdict.n_mlp}"
        lines.append(
            f"stage {verdict.stage}: {verdict.verdict} ({_interval_text(verdict)}; {counts})"
        )
    return lines


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------

_COLORS = {"plain": "#636efa", "mlp": "#ef553b"}
_BASELINE_SYMBOLS = ("star", "diamond", "square", "triangle-up")


def _note_figure(title: str, note: str) -> go.Figure:
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
        return _note_figure(title, NO_COMPLETED_TRIALS)
    figure = go.Figure()
    for kind, label in (("plain", "plain conv"), ("mlp", "MLP conv")):
        x, y = [], []
        for verdict in verdicts:
            values = verdict.plain_accuracies if kind == "plain" else verdict.mlp_accuracies
            x += [f"stage {verdict.stage}"] * len(values)
            y += values
        figure.add_trace(
            go.Box(x=x, y=y, name=label, boxpoints="all", jitter=0.4, marker_color=_COLORS[kind])
        )
    for verdict in verdicts:
        detail = _interval_text(verdict)
        figure.add_annotation(
            x=f"stage {verdict.stage}",
            y=1.0,
            yref="paper",
            yanchor="bottom",
            showarrow=False,
            text=verdict.verdict + (f"<br>{detail}" if detail else ""),
        )
    figure.update_layout(
        title=dict(text=title, y=0.98),
        boxmode="group",
        yaxis_title="validation accuracy",
        margin=dict(t=120),
    )
    return figure


def _box_figure(
    title: str, x_title: str, traces: list[tuple[str, list[AccuracyGroup]]], labels: dict[int, str]
) -> go.Figure:
    if not traces:
        return _note_figure(title, NO_COMPLETED_TRIALS)
    figure = go.Figure()
    for name, groups in traces:
        x = [
            labels.get(group.value, str(group.value)) for group in groups for _ in group.accuracies
        ]
        y = [accuracy for group in groups for accuracy in group.accuracies]
        figure.add_trace(go.Box(x=x, y=y, name=name, boxpoints="all", jitter=0.4, boxmean=True))
    order = sorted({group.value for _, groups in traces for group in groups})
    figure.update_layout(title=title, boxmode="group", yaxis_title="validation accuracy")
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


def plot_cost(cost_info: CostInfo, *, cost: str = "params") -> go.Figure:
    """Accuracy against cost (log x), with the Pareto front and the baselines marked.

    Args:
        cost_info: From :func:`get_cost_info`.
        cost: ``"params"`` or ``"macs"``.
    """
    if cost not in ("params", "macs"):
        raise ValueError(f"cost must be 'params' or 'macs', but got cost={cost!r}.")
    label = "parameters" if cost == "params" else "MACs per image"
    title = f"Accuracy vs {label}"
    points = [point for point in cost_info.points if (getattr(point, cost) or 0) > 0]
    if not points:
        note = NO_COMPLETED_TRIALS if not cost_info.points else f"no trial recorded {cost}"
        return _note_figure(title, note)

    def hover(point: CostPoint) -> str:
        summary = html.escape(point.arch_summary or "")
        return f"trial {point.number}<br>{summary}"

    figure = go.Figure()
    others = [point for point in points if point.baseline is None]
    figure.add_trace(
        go.Scatter(
            x=[getattr(point, cost) for point in others],
            y=[point.accuracy for point in others],
            mode="markers",
            name="trials",
            marker=dict(color="#aab2bd", size=8),
            hovertext=[hover(point) for point in others],
        )
    )
    by_number = {point.number: point for point in points}
    front_numbers = cost_info.params_front if cost == "params" else cost_info.macs_front
    front = [by_number[number] for number in front_numbers if number in by_number]
    figure.add_trace(
        go.Scatter(
            x=[getattr(point, cost) for point in front],
            y=[point.accuracy for point in front],
            mode="lines+markers",
            line_shape="hv",
            name="Pareto front",
            marker=dict(color="#ef553b", size=10),
            hovertext=[hover(point) for point in front],
        )
    )
    baselines = sorted({point.baseline for point in points if point.baseline is not None})
    for index, baseline in enumerate(baselines):
        marked = [point for point in points if point.baseline == baseline]
        figure.add_trace(
            go.Scatter(
                x=[getattr(point, cost) for point in marked],
                y=[point.accuracy for point in marked],
                mode="markers+text",
                text=[f"{baseline} baseline"] * len(marked),
                textposition="top center",
                name=f"{baseline} baseline",
                marker=dict(symbol=_BASELINE_SYMBOLS[index % len(_BASELINE_SYMBOLS)], size=14),
                hovertext=[hover(point) for point in marked],
            )
        )
    figure.update_layout(title=title, yaxis_title="validation accuracy")
    figure.update_xaxes(type="log", title=f"{label} (log scale)")
    return figure


def plot_param_importances(study: optuna.Study) -> go.Figure:
    """Optuna's hyperparameter importances, or a note when they cannot be computed.

    Importances need enough completed trials; with too few, the evaluator fails or warns, and
    the figure says so instead of raising.

    Args:
        study: The study.
    """
    title = "Hyperparameter importances"
    if not _completed_trials(study):
        return _note_figure(title, NO_COMPLETED_TRIALS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            figure = optuna.visualization.plot_param_importances(study)
        except Exception as error:
            return _note_figure(title, f"importances unavailable: {error}")
    if caught:
        figure.add_annotation(
            text=f"note: {caught[0].message}",
            x=0,
            y=-0.15,
            xref="paper",
            yref="paper",
            showarrow=False,
            xanchor="left",
        )
    return figure


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
"""


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
    percent = _percent_label(verdicts[0].confidence)
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
    completed = _completed_trials(study)
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
            optuna.visualization.plot_optimization_history(study)
            if completed
            else _note_figure("Optimization history", NO_COMPLETED_TRIALS),
        ),
        (
            "intermediate-values",
            optuna.visualization.plot_intermediate_values(study)
            if has_intermediate
            else _note_figure("Intermediate values", "no intermediate values yet"),
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
