"""Drawing the analysis: complexity-normalised EDFs, ablation and consensus forest plots, and
the effect by network size. Every figure says why when it is empty."""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go

from nin_search.analysis import (
    DesignSpaceEffect,
    RegimeEffect,
    StageAblation,
    StageConsensus,
    effect_text,
    percent_label,
    size_label,
)
from nin_search.report._plot import note_figure
from nin_search.vocabulary import MLP, PLAIN

_COLORS = {PLAIN: "#636efa", MLP: "#ef553b", "flipped": "#ef553b", "matched": "#00a087"}
_KIND_NAMES = {PLAIN: "plain conv", MLP: "MLP conv"}
_DIFFERENCE_AXIS = "MLP conv − plain conv (accuracy points)"
_STAGE_COLORS = ("#444444", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")
_ROW_OFFSET = 0.15  # flipped above, matched below the row's line


def plot_design_space_edf(effect: DesignSpaceEffect) -> go.Figure:
    """One stage's complexity-normalised error EDFs of plain and MLP conv (Radosavovic et al.).

    The x range is padded beyond the errors so that the first and last steps (often the jump
    at chance-level error) stand clear of the borders; the verdict sits under the title.

    Args:
        effect: One entry of :func:`nin_search.analysis.get_design_space_info`.
    """
    at = "final values" if effect.epoch is None else f"epoch {effect.epoch}"
    title = f"Stage {effect.stage}: error EDF of random trials at {at}, weighted to equal params"
    if effect.n_random_plain + effect.n_random_mlp == 0:
        title = f"Stage {effect.stage}: error EDF of random trials, weighted to equal params"
        return note_figure(title, "no random trials recorded for this stage")
    if len(effect.curves) < 2:
        return note_figure(title, "needs random trials of both kinds in a shared size range")
    figure = go.Figure()
    for curve in effect.curves:
        figure.add_trace(
            go.Scatter(
                x=curve.errors,
                y=curve.cumulative_share,
                mode="lines",
                line_shape="hv",
                name=f"{_KIND_NAMES[curve.kind]} (n={len(curve.errors)})",
                line=dict(color=_COLORS[curve.kind]),
            )
        )
    errors = [error for curve in effect.curves for error in curve.errors]
    pad = max(1.0, 0.05 * (max(errors) - min(errors)))  # points: the end steps clear the borders
    figure.update_layout(
        # The verdict goes under the title, where it can never cover a curve.
        title=dict(
            text=f"{title}<br><sup>{html.escape(effect.verdict)}; KS "
            f"{effect.ks_statistic:.2f}, {effect.bins_used} size bins</sup>"
        ),
        xaxis_title="validation error (%)",
        xaxis_range=[min(errors) - pad, max(errors) + pad],
        yaxis_title="cumulative share (complexity-weighted)",
        yaxis_range=[0, 1.04],
        margin=dict(t=100),
        height=440,
    )
    return figure


def _forest(
    figure: go.Figure,
    name: str,
    rows: list[tuple[str, float, tuple[float, float] | None, str]],
    color: str,
) -> None:
    """Adds one trace of points with horizontal interval bars (rows without one get none)."""
    figure.add_trace(
        go.Scatter(
            x=[row[1] for row in rows],
            y=[row[0] for row in rows],
            mode="markers",
            name=name,
            marker=dict(color=color, size=10),
            error_x=dict(
                type="data",
                symmetric=False,
                array=[0 if row[2] is None else row[2][1] - row[1] for row in rows],
                arrayminus=[0 if row[2] is None else row[1] - row[2][0] for row in rows],
            ),
            hovertext=[row[3] for row in rows],
        )
    )


def _zero_line(figure: go.Figure) -> None:
    figure.add_vline(x=0, line_dash="dash", line_color="#888")


_VARIANTS = ("flipped", "matched")
_NO_INTERVAL = "1 seed: no interval"


def _ablation_label(ablation: StageAblation) -> str:
    """``stage 0, trial #7 (n=3)``, or ``(flipped n=3, matched n=1)`` when the counts differ."""
    counts = {
        variant: effect.n
        for variant in _VARIANTS
        if (effect := getattr(ablation, variant)) is not None
    }
    if len(set(counts.values())) == 1:
        count = f"n={next(iter(counts.values()))}"
    else:
        count = ", ".join(f"{variant} n={n}" for variant, n in counts.items())
    return f"stage {ablation.stage}, trial #{ablation.source} ({count})"


def _ablation_traces(
    figure: go.Figure, ablations: Sequence[StageAblation], variant: str, offset: float
) -> None:
    """One variant's effects at row + ``offset``: filled markers with their interval bars,
    and open markers without a bar for the effects of one seed (no interval)."""
    points = [
        (row + offset, effect)
        for row, ablation in enumerate(ablations)
        if (effect := getattr(ablation, variant)) is not None
        and effect.mean is not None
        and not (variant == "matched" and ablation.matched_is_flipped)  # drawn once, as flipped
    ]
    _markers_with_intervals(
        figure,
        positions=[y for y, _ in points],
        values=[effect.mean for _, effect in points],
        intervals=[effect.interval for _, effect in points],
        hovers=[f"{variant}: {effect.verdict}" for _, effect in points],
        name=variant,
        name_without=f"{variant}, {_NO_INTERVAL}",
        color=_COLORS[variant],
        horizontal=True,
    )


def _markers_with_intervals(
    figure: go.Figure,
    *,
    positions: Sequence[float],
    values: Sequence[float],
    intervals: Sequence[tuple[float, float] | None],
    hovers: Sequence[str],
    name: str,
    name_without: str,
    color: str,
    horizontal: bool,
) -> None:
    """Filled markers with their interval bars, and open markers without a bar (legend entry
    ``name_without``) where there is no interval; ``horizontal``: values on the x axis."""
    rows = list(zip(positions, values, intervals, hovers, strict=True))
    for has_interval in (True, False):
        group = [row for row in rows if (row[2] is not None) == has_interval]
        if not group:
            continue
        bars = None
        if has_interval:
            bars = dict(
                type="data",
                symmetric=False,
                array=[interval[1] - value for _, value, interval, _ in group],
                arrayminus=[value - interval[0] for _, value, interval, _ in group],
            )
        where = [row[0] for row in group]
        value = [row[1] for row in group]
        axes = (
            dict(x=value, y=where, error_x=bars)
            if horizontal
            else dict(x=where, y=value, error_y=bars)
        )
        marker = (
            dict(color=color, size=10)
            if has_interval
            else dict(color=color, size=11, symbol="circle-open", line=dict(width=2))
        )
        figure.add_trace(
            go.Scatter(
                **axes,
                mode="markers",
                name=name if has_interval else name_without,
                legendgroup=name,
                marker=marker,
                hovertext=[row[3] for row in group],
            )
        )


def plot_ablation_forest(ablations: Sequence[StageAblation]) -> go.Figure:
    """Paired ablation differences with their t-intervals, flipped and matched, per source
    trial and stage.

    Each (stage, source trial) is one row; flipped sits just above the row's line and matched
    just below, so both show even when they are equal. An effect of one seed has no interval:
    it is an open marker without a bar, and the legend and title say so.

    Args:
        ablations: From :func:`nin_search.analysis.get_ablation_info`.
    """
    title = "Paired ablations: MLP conv − plain conv on the same seeds"
    if not ablations:
        return note_figure(title, "no ablation yet: run `nin-search ablate`")
    figure = go.Figure()
    for variant, offset in zip(_VARIANTS, (-_ROW_OFFSET, _ROW_OFFSET), strict=True):
        _ablation_traces(figure, ablations, variant, offset)
    _zero_line(figure)
    effects = [effect for ablation in ablations for effect in ablation.distinct_effects()]
    confidence = percent_label(effects[0].confidence)
    if all(effect.interval is None for effect in effects):
        means = "means of 1 seed each: no intervals"
    elif any(effect.interval is None for effect in effects):
        means = f"means, {confidence} t-intervals; open markers: 1 seed, no interval"
    else:
        means = f"means, {confidence} t-intervals"
    rows = len(ablations)
    figure.update_layout(
        title=f"{title} ({means})",
        xaxis_title=_DIFFERENCE_AXIS,
        height=max(320, 160 + 60 * rows),
    )
    figure.update_yaxes(
        tickmode="array",
        tickvals=list(range(rows)),
        ticktext=[_ablation_label(ablation) for ablation in ablations],
        range=[rows - 0.5, -0.5],  # the first row on top
        zeroline=False,
    )
    return figure


def _regime_hover(regime: RegimeEffect) -> str:
    text = effect_text(regime.difference, regime.interval, regime.confidence)
    return f"{size_label(regime)}: {text}; plain n={regime.n_plain}, mlp n={regime.n_mlp}"


def plot_regime(effects: Sequence[DesignSpaceEffect]) -> go.Figure:
    """The normalised effect per parameter-count tercile, one trace per stage.

    The stages sit side by side within each size range. A range with too few trials of one
    kind for an interval is an open marker without a bar (not a bar of width 0).

    Args:
        effects: From :func:`nin_search.analysis.get_design_space_info`.
    """
    title = (
        "When does MLP conv help? Effect by network size (random trials, weighted to equal params)"
    )
    with_sizes = [
        effect
        for effect in effects
        if any(regime.difference is not None for regime in effect.regimes)
    ]
    if not with_sizes:
        return note_figure(title, "too few random trials with both kinds to split by size")
    sizes: list[str] = []
    labels: dict[str, set[str]] = {}
    for effect in with_sizes:
        for regime in effect.regimes:
            if regime.size not in sizes:
                sizes.append(regime.size)
            labels.setdefault(regime.size, set()).add(size_label(regime))
    step = min(0.2, 0.6 / len(with_sizes))
    figure = go.Figure()
    for index, effect in enumerate(with_sizes):
        offset = (index - (len(with_sizes) - 1) / 2) * step
        regimes = [regime for regime in effect.regimes if regime.difference is not None]
        name = f"stage {effect.stage}"
        _markers_with_intervals(
            figure,
            positions=[sizes.index(regime.size) + offset for regime in regimes],
            values=[regime.difference for regime in regimes],
            intervals=[regime.interval for regime in regimes],
            hovers=[_regime_hover(regime) for regime in regimes],
            name=name,
            name_without=f"{name}, no interval (too few of one kind)",
            color=_STAGE_COLORS[index % len(_STAGE_COLORS)],
            horizontal=False,
        )
    figure.add_hline(y=0, line_dash="dash", line_color="#888")
    figure.update_layout(
        title=title,
        xaxis_title="network size (parameter-count range of the random trials)",
        yaxis_title=_DIFFERENCE_AXIS,
        height=460,
    )
    figure.update_xaxes(
        tickmode="array",
        tickvals=list(range(len(sizes))),
        # One range per size unless the stages split differently (then the hover has each).
        ticktext=[next(iter(labels[size])) if len(labels[size]) == 1 else size for size in sizes],
        range=[-0.5, len(sizes) - 0.5],
        zeroline=False,
        showgrid=False,
    )
    return figure


def plot_consensus_forest(consensus: StageConsensus) -> go.Figure:
    """One stage's flipped-ablation effect in each study and their random-effects pool.

    Args:
        consensus: One entry of :func:`nin_search.analysis.get_consensus_info`.
    """
    title = f"Stage {consensus.stage}: flipped ablation across studies"
    if not consensus.effects:
        return note_figure(title, html.escape(consensus.verdict))
    figure = go.Figure()
    z = 1.959963984540054  # a study row without its own t-interval (a mean of sources)
    rows = [
        (
            f"{html.escape(effect.study_name)} (n={effect.n})",
            effect.difference,
            effect.interval
            or (
                effect.difference - z * effect.standard_error,
                effect.difference + z * effect.standard_error,
            ),
            f"{effect.difference:+.2f} ± {effect.standard_error:.2f} se"
            + ("" if effect.interval else ", bar ±1.96 se"),
        )
        for effect in consensus.effects
    ]
    _forest(figure, "studies", rows, "#636efa")
    if consensus.pooled is not None:
        pooled = [("pooled (random effects)", consensus.pooled, consensus.interval, "")]
        _forest(figure, "pooled", pooled, "#222")
        figure.data[-1].marker.symbol = "diamond"
        figure.data[-1].marker.size = 16
    _zero_line(figure)
    figure.update_layout(
        title=f"{title}<br><sup>{html.escape(consensus.verdict)}</sup>",
        xaxis_title=_DIFFERENCE_AXIS,
        yaxis_autorange="reversed",
        height=max(300, 120 + 45 * (len(rows) + 1)),
    )
    return figure
