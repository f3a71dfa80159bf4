"""The study note: Markdown that optuna-dashboard shows on a study's page.

It holds the search space, trial counts, the best trial (or the Pareto front), the two
baselines, the answer of :mod:`nin_search.analysis` (does MLP conv beat plain conv, per stage)
and the naive per-stage verdicts of :mod:`nin_search.report`. User text (the study name, config
values) is escaped so that it reads as plain text; architecture summaries are shown as code
spans. ``optimize`` and ``ablate`` rewrite it when they end; ``dashboard`` when it starts.
Nothing here prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import optuna_dashboard
from optuna.trial import FrozenTrial, TrialState

from nin_search import analysis, records, report
from nin_search.trials import (
    baseline_trials,
    best_trials,
    objective_names,
    recorded_config,
    states_text,
)
from nin_search.vocabulary import BASELINE_TITLES

__all__ = ["refresh_study_note", "study_note", "write_study_note"]

# Characters that can start Markdown syntax (emphasis, links, code, headings, lists, tables,
# autolinks) are backslash-escaped, which CommonMark allows for any ASCII punctuation; <, > and
# & become entities, so that no raw HTML survives even a renderer that would allow it.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:@])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _text(value: Any) -> str:
    """``value`` as Markdown that renders as exactly its text, on one line."""
    text = " ".join(str(value).split())
    text = _MARKDOWN_SYNTAX.sub(r"\\\1", text)
    return "".join(_ENTITIES.get(character, character) for character in text)


def _code(value: Any) -> str:
    """``value`` as an inline code span, on one line (the fence outlasts any backtick run)."""
    text = " ".join(str(value).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def _choices(value: Any) -> str:
    """A searchable config value: ``8, 16`` for a list, ``1..2`` (``(log)``) for a range."""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, Mapping) and {"low", "high"} <= value.keys():
        scale = " (log)" if value.get("log") else ""
        return f"{value['low']}..{value['high']}{scale}"
    return str(value)


def _space_lines(config: Any) -> list[str]:
    """The search space summary from the study's recorded config (a StudyConfig dump)."""
    if not isinstance(config, Mapping):
        return ["No search space recorded: this study was not created by `nin-search optimize`."]
    sections = {
        name: config.get(name) if isinstance(config.get(name), Mapping) else {}
        for name in ("data", "space", "train", "optuna")
    }
    data, space, train, optuna_config = (sections[name] for name in sections)
    rows = [
        ("dataset", data.get("dataset")),
        ("epochs per trial", train.get("epochs")),
        ("number of stages", space.get("num_stages")),
        ("stage types", space.get("stage_types")),
        ("kernel sizes", space.get("kernel_sizes")),
        ("widths (k x k conv)", space.get("widths")),
        ("MLP depth (1x1 convs per MLP stage)", space.get("mlp_depth")),
        ("MLP widths (1x1 convs)", space.get("mlp_widths")),
        ("sampler", optuna_config.get("sampler")),
        ("pruner", optuna_config.get("pruner")),
    ]
    return [
        f"- {name}: {_code(_choices(value))}"
        for name, value in rows
        if value is not None  # a config of another nin-search version may lack a key
    ]


def _accuracy(trial: FrozenTrial) -> str:
    """``**43.06%**``; ``over a limit: ...`` for a trial a cost limit stopped (its 0.0 is a
    placeholder); the state of a trial that did not complete."""
    record = records.TrialRecord.from_trial(trial)
    if not record.feasible:
        return f"over a limit: {_text(record.constraint_violation)}"
    if trial.state != TrialState.COMPLETE or record.accuracy is None:
        return trial.state.name.lower()
    return f"**{record.accuracy * 100:.2f}%**"


def _trial_line(trial: FrozenTrial) -> str:
    """``trial #3: **43.06%** `plain5x5-16/max > ...``` (the state when not completed)."""
    line = f"trial #{trial.number}: {_accuracy(trial)}"
    summary = records.TrialRecord.from_trial(trial).arch_summary
    return f"{line} {_code(summary)}" if summary else line


def _costs(trial: FrozenTrial) -> str:
    """`` (28,234 params, 429,312 MACs)``: what a trial of the Pareto front costs."""
    record = records.TrialRecord.from_trial(trial)
    costs = [f"{record.param_count:,} params"] if record.param_count is not None else []
    costs += [f"{record.macs:,} MACs"] if record.macs is not None else []
    costs += [f"{record.latency_ms:.3f} ms"] if record.latency_ms is not None else []
    return f" ({', '.join(costs)})" if costs else ""


def _answer_markdown(answer_lines: Sequence[str]) -> list[str]:
    """The answer block as Markdown: the first line as a paragraph, indented lines as nested
    list items (two spaces a level); every line is shown as plain text."""
    if not answer_lines:
        return ["No answer yet."]
    lines = [_text(answer_lines[0]), ""]
    for line in answer_lines[1:]:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        lines.append("  " * max(depth - 1, 0) + f"- {_text(line)}")
    return lines


def study_note(
    study: optuna.Study, verdict_lines: list[str], *, answer_lines: Sequence[str] = ()
) -> str:
    """The Markdown of the study note that optuna-dashboard shows on the study page.

    Args:
        study: A nin-search study (:func:`nin_search.trials.recorded_config`; a study
            without one gets a note without the search space).
        verdict_lines: One line per stage, from :func:`nin_search.report.verdict_lines`
            (trusted text, shown as is): the naive comparison of every completed trial.
        answer_lines: From :func:`nin_search.analysis.answer_lines` (escaped: shown as plain
            text); no "Answer" section when empty.

    Returns:
        The note: title, search space, trial counts by state, best trial (number, validation
        accuracy in percent, ``arch_summary``; with several objectives, the Pareto front with
        each trial's costs), the two baselines, the answer and the naive verdicts.
    """
    trials = study.get_trials(deepcopy=False)
    lines = [f"# nin-search study: {_text(study.study_name)}", "", "## Search space", ""]
    lines += _space_lines(recorded_config(study))
    lines += ["", "## Trials", "", f"{states_text(trials)}."]
    front = best_trials(study)
    if len(study.directions) == 1:
        lines += ["", "## Best trial", ""]
        lines.append(_trial_line(front[0]) if front else "No completed trial yet.")
    else:
        names = " vs ".join(objective_names(study))
        lines += ["", f"## Pareto front ({_text(names)}), most accurate first", ""]
        lines += [f"- {_trial_line(trial)}{_costs(trial)}" for trial in front] or [
            "No completed trial yet."
        ]
    lines += ["", "## Baselines", ""]
    baselines = baseline_trials(study)
    for kind, title in BASELINE_TITLES.items():
        trial = baselines.get(kind)
        lines.append(
            f"- {title}: " + ("not in this study" if trial is None else _trial_line(trial))
        )
    if answer_lines:
        lines += ["", "## Answer", ""]
        lines += _answer_markdown(answer_lines)
    lines += [
        "",
        "## Naive comparison (every completed trial, per stage)",
        "",
        "_Confounded by what the sampler chose and by the parameters an MLP conv adds; the "
        "answer above controls both._",
        "",
    ]
    lines += [f"- {line}" for line in verdict_lines] or ["No finished trial yet."]
    lines += [
        "",
        "_Written by nin-search from the trials; edits made here are lost when it rewrites "
        "the note._",
    ]
    return "\n".join(lines) + "\n"


def write_study_note(study: optuna.Study, markdown: str) -> None:
    """Replaces the study note (``optuna_dashboard.save_note``; stored in the study's storage).

    Args:
        study: The study.
        markdown: The note's Markdown.
    """
    optuna_dashboard.save_note(study, markdown)


def refresh_study_note(study: optuna.Study, *, where: str = "") -> list[str]:
    """Recomputes the answer and the naive verdicts and writes them, with the summary, as the
    study note. The companion ablation study is found in the study's storage.

    Args:
        study: A nin-search study.
        where: The study's command-line options, for the commands the answer suggests
            (:func:`nin_search.storage_messages.study_options`).

    Returns:
        The answer lines written (:func:`nin_search.analysis.answer_lines`, as ``nin-search
        report`` prints them).
    """
    answer = analysis.get_answer(study, analysis.find_ablation_study(study), where=where)
    lines = analysis.answer_lines(answer)
    verdicts = report.verdict_lines(report.get_stage_verdicts(study))
    write_study_note(study, study_note(study, verdicts, answer_lines=lines))
    return lines
