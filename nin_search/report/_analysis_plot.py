"""Drawing the analysis: complexity-normalised EDFs, ablation and consensus forest plots, and
the effect by network size. Every figure says why when it is empty."""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go

from nin_search.analysis import (
    DesignSpaceEffect,
    PairedEffect,
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


def plot_design_space_edf(effect: DesignSpaceEffect) -> go.Figure:
    """One stage's complexity-normalised error EDFs of plain and MLP conv (Radosavovic et al.).

    Args:
        effect: One entry of :func:`nin_search.analysis.get_design_space_info`.
    """
    at = "final values" if effect.epoch is None else f"epoch {effect.epoch}"
    title = f"Stage {effect.stage}: error EDF of random trials at {at}, weighted to equal params"
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
    figure.add_annotation(
        text=f"{effect.verdict}<br>KS {effect.ks_statistic:.2f}, {effect.bins_used} size bins",
        x=0.99,
        y=0.02,
        xref="paper",
        yref="paper",
        xanchor="right",
        yanchor="bottom",
        showarrow=False,
        align="right",
    )
    figure.update_layout(
        title=title,
        xaxis_title="validation error (%)",
        yaxis_title="cumulative share (complexity-weighted)",
        yaxis_range=[0, 1.02],
        height=420,
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


def plot_ablation_forest(ablations: Sequence[StageAblation]) -> go.Figure:
    """Paired ablation differences with their t-intervals, flipped and matched, per source
    trial and stage.

    Args:
        ablations: From :func:`nin_search.analysis.get_ablation_info`.
    """
    title = "Paired ablations: MLP conv − plain conv on the same seeds"
    if not ablations:
        return note_figure(title, "no ablation yet: run `nin-search ablate`")
    figure = go.Figure()
    for variant in ("flipped", "matched"):
        effects: list[PairedEffect] = [
            getattr(ablation, variant)
            for ablation in ablations
            if getattr(ablation, variant) is not None
        ]
        rows = [
            (
                f"stage {effect.stage}, trial #{effect.source} (n={effect.n})",
                effect.mean,
                effect.interval,
                effect.verdict,
            )
            for effect in effects
        ]
        if rows:
            _forest(figure, f"{variant}", rows, _COLORS[variant])
    _zero_line(figure)
    first = next(
        effect
        for ablation in ablations
        for effect in (ablation.flipped, ablation.matched)
        if effect is not None
    )
    confidence = percent_label(first.confidence)
    figure.update_layout(
        title=f"{title} (means, {confidence} t-intervals)",
        xaxis_title=_DIFFERENCE_AXIS,
        yaxis_autorange="reversed",
        height=max(300, 80 + 45 * len(ablations)),
    )
    return figure


def plot_regime(effects: Sequence[DesignSpaceEffect]) -> go.Figure:
    """The normalised effect per parameter-count tercile, one trace per stage.

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
    figure = go.Figure()
    for effect in with_sizes:
        regimes = [regime for regime in effect.regimes if regime.difference is not None]
        figure.add_trace(
            go.Scatter(
                x=[size_label(regime) for regime in regimes],
                y=[regime.difference for regime in regimes],
                mode="markers",
                name=f"stage {effect.stage}",
                marker=dict(size=10),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[
                        0 if r.interval is None else r.interval[1] - r.difference for r in regimes
                    ],
                    arrayminus=[
                        0 if r.interval is None else r.difference - r.interval[0] for r in regimes
                    ],
                ),
                hovertext=[
                    f"{effect_text(r.difference, r.interval, r.confidence)}; "
                    f"plain n={r.n_plain}, mlp n={r.n_mlp}"
                    for r in regimes
                ],
            )
        )
    figure.add_hline(y=0, line_dash="dash", line_color="#888")
    figure.update_layout(title=title, yaxis_title=_DIFFERENCE_AXIS, height=420)
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
