"""The analysis on the page: the answer block, its figures and tables, and the multi-study
consensus report."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence

import optuna

from nin_search.analysis import (
    Answer,
    DesignSpaceEffect,
    StageConsensus,
    answer_lines,
    consensus_lines,
    find_ablation_study,
    get_answer,
    get_consensus_info,
    percent_label,
)
from nin_search.analysis._format import interval_range
from nin_search.report._analysis_plot import (
    plot_ablation_forest,
    plot_consensus_forest,
    plot_design_space_edf,
    plot_regime,
)
from nin_search.report._page import figure_html, page_head, table

_METHOD = (
    "<p>Every difference is accuracy with an MLP conv at the stage minus accuracy with a plain "
    "conv there, in points. <b>Ablation</b>: the same network with one stage's kind flipped, "
    "or flipped at the original's parameter count (matched), trained on the same seeds; mean "
    "paired difference with its t-interval. <b>Design space</b>: randomly sampled trials only "
    "(the sampler's choices are confounded), compared at the largest epoch every one of them "
    "reached, each weighted so that both kinds have the same distribution of log parameter "
    "count (Radosavovic et al. 2019); a Welch t-interval over the size bins, and the KS "
    "statistic between the weighted error EDFs. <b>Size-adjusted</b>: the same trials, the "
    "kind's effect in a least-squares fit of accuracy on kind and log parameter count, with "
    "robust (HC3) errors: it removes a linear size effect that bins too coarse leave in.</p>"
)

# Shown on the page `report --all` writes for a storage with one searched study.
ONE_STUDY_NOTE = (
    "One searched study only, so this is its full report: a consensus pools two or more (one "
    "per dataset, say)."
)


def answer_html(answer: Answer) -> list[str]:
    """The "Answer" block: :func:`nin_search.analysis.answer_lines`, escaped, as preformatted
    text."""
    text = html.escape("\n".join(answer_lines(answer)))
    return ["<h2>Answer</h2>", f'<pre class="answer">{text}</pre>', _METHOD]


def _design_space_table(effects: Sequence[DesignSpaceEffect]) -> str:
    def number(value: float | None, digits: int = 1) -> str:
        return "–" if value is None else f"{value:+.{digits}f}"

    rows = [
        [
            effect.stage,
            "–" if effect.epoch is None else effect.epoch,
            effect.n_plain,
            effect.n_mlp,
            number(effect.difference),
            "–" if effect.interval is None else interval_range(effect.interval),
            "–" if effect.ks_statistic is None else f"{effect.ks_statistic:.2f}",
            f"{effect.bins_used} / {effect.bins_dropped} ({effect.trials_dropped} trials)",
            "–" if effect.size_ratio is None else f"{effect.size_ratio:.2f}x",
            f"{effect.n_left_out_plain} / {effect.n_left_out_mlp}",
            "–" if effect.adjusted is None else number(effect.adjusted.difference),
            "–"
            if effect.adjusted is None or effect.adjusted.interval is None
            else interval_range(effect.adjusted.interval),
            number(effect.unweighted_difference),
            number(effect.naive_difference),
        ]
        for effect in effects
    ]
    percent = percent_label(effects[0].confidence) if effects else "95%"
    header = [
        "stage",
        "epoch",
        "plain n",
        "mlp n",
        "mlp − plain, weighted to equal params (points)",
        f"{percent} CI (Welch t)",
        "KS",
        "bins used / dropped",
        "weighted params, mlp / plain",
        "left out (no accuracy): plain / mlp",
        "mlp − plain, size-adjusted (points)",
        f"{percent} CI (robust t)",
        "random trials, unweighted",
        "naive (all completed)",
    ]
    return table(header, rows)


def analysis_html(answer: Answer) -> list[str]:
    """The figures behind the answer: per stage the normalised EDFs, the ablation forest plot
    and the effect by size, with a table of the design-space numbers."""
    effects = [stage.design_space for stage in answer.stages if stage.design_space is not None]
    ablations = [ablation for stage in answer.stages for ablation in stage.ablations]
    parts = ["<h2>Evidence: paired ablations</h2>"]
    if not answer.has_ablation_study:
        parts.append("<p>no ablation yet: run <code>nin-search ablate</code></p>")
    parts.append(figure_html(plot_ablation_forest(ablations), "ablation-forest"))
    parts.append(
        "<h2>Evidence: the design space (random trials, weighted to equal complexity)</h2>"
    )
    parts.append(_design_space_table(effects))
    parts += [
        figure_html(plot_design_space_edf(effect), f"edf-stage-{effect.stage}")
        for effect in effects
    ]
    parts.append(figure_html(plot_regime(effects), "regime"))
    return parts


def write_consensus_report(
    studies: Sequence[optuna.Study],
    path: str | os.PathLike[str],
    *,
    sources: str = "best",
    answers: Sequence[Answer] | None = None,
) -> list[StageConsensus]:
    """Writes one HTML page on several studies: the consensus per stage, then each answer.

    With a single study there is nothing to pool: the page is that study's full report
    (:func:`nin_search.report.write_report`), saying so.

    Args:
        studies: Searched studies (e.g. one per dataset); each one's companion ablation study
            is found in its storage.
        path: The HTML file to write (overwritten).
        sources: ``"best"`` or ``"mean"``, as :func:`nin_search.analysis.get_consensus_info`.
        answers: Each study's answer, in the order of ``studies``; computed when omitted.

    Returns:
        The consensus per stage shown on the page.
    """
    companions = {study.study_name: find_ablation_study(study) for study in studies}
    consensus = get_consensus_info(studies, ablation_studies=companions, sources=sources)
    if answers is None:
        answers = [get_answer(study, companions[study.study_name]) for study in studies]
    if len(studies) == 1:
        from nin_search.report._html import write_report  # it imports this module

        write_report(studies[0], path, answer=answers[0], note=ONE_STUDY_NOTE)
        return consensus
    names = ", ".join(study.study_name for study in studies)
    summary = "\n".join(consensus_lines(consensus))
    which = "its most accurate ablated trial" if sources == "best" else "the mean of its trials"
    parts = [
        *page_head(f"nin-search consensus: {names}"),
        "<h2>Consensus across studies</h2>",
        f'<pre class="answer">{html.escape(summary)}</pre>',
        f"<p>Each study contributes its flipped ablation effect per stage ({which}), weighted "
        "by 1/(standard error² + between-study variance); I² is the share of the spread "
        "between studies that is not chance. The studies agree when I² &lt; 25% and every "
        "effect has the same sign.</p>",
        *(
            figure_html(plot_consensus_forest(stage), f"consensus-stage-{stage.stage}")
            for stage in consensus
        ),
    ]
    for answer in answers:
        text = html.escape("\n".join(answer_lines(answer)))
        parts.append(f'<pre class="answer">{text}</pre>')
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(parts))
    return consensus
