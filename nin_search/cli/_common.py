"""The typer app, consoles, shared options and the tables every command prints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from nin_search.config import DEFAULT_STORAGE, StudyConfig, default_config
from nin_search.errors import UserError
from nin_search.study_files import load_study_config

app = typer.Typer(
    name="nin-search",  # its help is the callback's docstring (cli/__init__.py)
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Printing to a pipe or a file, rich would wrap every line at 80 columns: a table row, an
# architecture summary, a command to copy. There nothing wraps (unless COLUMNS says a width).
UNWRAPPED_WIDTH = 10_000  # columns: wider than any line nin-search prints


def _console(*, stderr: bool = False) -> Console:
    """A console that wraps at the terminal's width, and not at all for a pipe or a file."""
    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return Console(stderr=stderr, width=UNWRAPPED_WIDTH, soft_wrap=True)


console = _console()
err_console = _console(stderr=True)

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"


def refuse_empty_device(value: str | None) -> str | None:
    """``--device ""`` (an unset shell variable, say) is refused, not read as "not given"."""
    if value is not None and not value.strip():
        raise UserError(f"--device is empty; pass {DEVICE_HELP}")
    return value


StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help=f"Optuna storage URL [default: the study file's, else {DEFAULT_STORAGE}].",
        show_default=False,
    ),
]
StudyNameOption = Annotated[
    str | None,
    typer.Option(
        "--study-name", help="Study name [default: the study file's name].", show_default=False
    ),
]
# The commands that train again a trial of an existing study (ablate, train).
StudyDeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device",
        help=f"{DEVICE_HELP} [default: the study's].",
        show_default=False,
        callback=refuse_empty_device,
    ),
]
# The commands that read an existing study.
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        envvar="NIN_SEARCH_WORKERS",
        help="Worker processes on this machine; with --devices each gets its own device. 1 "
        "gives a run reproducible to the digit. [default: one per CPU core when training on "
        "the CPU (faster), else one per device]",
        show_default=False,
    ),
]
DevicesOption = Annotated[
    str | None,
    typer.Option(
        "--devices",
        help="Comma-separated devices given to the workers in turn, e.g. cuda:0,cuda:1.",
        show_default=False,
    ),
]


def refuse_device_and_devices(device: str | None, devices: str | None) -> None:
    """``--device`` (one) and ``--devices`` (the workers') are one choice."""
    if device is not None and devices is not None:
        raise UserError("pass either --device (one) or --devices (a list for the workers)")


ReadStorageOption = Annotated[str, typer.Option("--storage", help="Optuna storage URL.")]
ExistingStudyOption = Annotated[
    str | None,
    typer.Option(
        "--study-name",
        help="Study name [default: the storage's only study].",
        show_default=False,
    ),
]


def quiet_optuna() -> None:
    from nin_search.study import quiet_optuna as quiet

    quiet()


def resolve_config(study_file: Path | None, **overrides: Any) -> StudyConfig:
    config = default_config() if study_file is None else load_study_config(study_file)
    study_updates = {k: v for k, v in overrides.items() if k in ("seed", "n_trials", "timeout")}
    study_updates = {k: v for k, v in study_updates.items() if v is not None}
    if study_updates:
        config = config.model_copy(update={"study": config.study.model_copy(update=study_updates)})
    if overrides.get("device") is not None:
        config = config.model_copy(
            update={"train": config.train.model_copy(update={"device": overrides["device"]})}
        )
    return config


def format_accuracy(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _count(value: float | None) -> str:
    """A parameter or MAC count with thousands separators; "-" when the trial lacks it."""
    return "-" if value is None else f"{value:,}"


def _trial_column(trial: Any) -> list[str]:
    if trial is None:
        return ["-"] * 6
    from nin_search.records import TrialRecord

    record = TrialRecord.from_trial(trial)
    hparams = ("optimizer", "learning_rate", "batch_size")
    # A value in its place, "-" for one the study does not search (a plugin study's own names).
    training = ", ".join(
        "-"
        if k not in trial.params
        else f"{trial.params[k]:.3g}"
        if isinstance(trial.params[k], float)
        else str(trial.params[k])
        for k in hparams
    )
    accuracy = record.accuracy
    value = format_accuracy(accuracy) if accuracy is not None else trial.state.name.lower()
    if not record.feasible:
        value = f"over a limit: {record.constraint_violation}"
    return [
        f"#{trial.number}",
        value,
        record.arch_summary or "-",
        _count(record.param_count),
        _count(record.macs),
        training,
    ]


def _pareto_table(study: Any, title: str) -> Table:
    """Multi-objective: the Pareto front, most accurate first, then both baselines."""
    from nin_search.records import TrialRecord
    from nin_search.trials import baseline_trials, best_trials, objective_names

    objectives = objective_names(study)
    front = best_trials(study)
    on_front = {t.number for t in front}
    baselines = {t.number: kind for kind, t in baseline_trials(study).items()}
    rows = [
        (f"#{t.number}" + (f" ({baselines[t.number]} baseline)" if t.number in baselines else ""),
         TrialRecord.from_trial(t))
        for t in front
    ]  # fmt: skip
    off_front = [t for t in baseline_trials(study).values() if t.number not in on_front]
    rows += [
        (f"{baselines[t.number]} baseline #{t.number} (off the front)", TrialRecord.from_trial(t))
        for t in off_front
    ]
    with_latency = any(record.latency_ms is not None for _, record in rows)
    table = Table(title=f"{title}; Pareto front ({' vs '.join(objectives)})", title_justify="left")
    columns = ["trial", "val accuracy", "params", "MACs / image"]
    columns += ["latency ms"] * with_latency
    for column in columns:
        table.add_column(column, no_wrap=True)
    table.add_column("architecture", overflow="fold", ratio=1)
    for index, (label, record) in enumerate(rows):
        accuracy = format_accuracy(record.accuracy) if record.feasible else "over a limit"
        cells = [label, accuracy, _count(record.param_count), _count(record.macs)]
        if with_latency:
            cells.append("-" if record.latency_ms is None else f"{record.latency_ms:.3f}")
        last_of_front = index == len(front) - 1 and off_front
        table.add_row(*cells, record.arch_summary or "-", end_section=bool(last_of_front))
    return table


def summary_table(study: Any) -> Table:
    """The best trial next to the two baselines (NIN-shaped, all-plain); with several
    objectives, the Pareto front."""

    from nin_search.trials import baseline_trials, best_trials, states_text
    from nin_search.vocabulary import BASELINE_TITLES

    title = f"study {study.study_name!r}: {states_text(study.get_trials(deepcopy=False))}"
    if len(study.directions) > 1:
        return _pareto_table(study, title)
    table = Table(title=title, title_justify="left")
    table.add_column("")
    front = best_trials(study)
    best = front[0] if front else None
    baselines = baseline_trials(study)
    columns = {"best": best}
    columns.update({title: baselines.get(kind) for kind, title in BASELINE_TITLES.items()})
    for title in columns:
        table.add_column(title, overflow="fold")
    rows = ["trial", "val accuracy", "architecture", "params", "MACs / image", "opt, lr, batch"]
    values = [_trial_column(trial) for trial in columns.values()]
    for index, row in enumerate(rows):
        table.add_row(row, *(column[index] for column in values))
    return table


_ORDER = {
    "accuracy": "most accurate first",
    "params": "fewest parameters first",
    "macs": "fewest MACs first",
    "latency_ms": "fastest first",
}


def _leaderboard_accuracy(row: dict[str, Any]) -> str:
    if not row["feasible"]:
        return "over a limit"
    text = format_accuracy(row["accuracy"])
    return text if row["accuracy"] is None or row["accuracy_is_final"] else f"{text}*"


def leaderboard_table(
    study_name: str,
    rows: list[dict[str, Any]],
    *,
    total: int,
    sort: str,
    front: frozenset[int] | None = None,
) -> Table:
    """``nin-search trials``: one line per trial (:func:`nin_search.summary.trial_summary`
    rows). An architecture summary stays on one line, whole unless the terminal is too narrow
    for it (then cut at its end, marked "…"); piped, nothing is cut. ``front``: the Pareto
    front's trial numbers, for a study with several objectives (a "front" column marks them)."""
    with_latency = sort == "latency_ms" or any(row["latency_ms"] is not None for row in rows)
    table = Table(
        title=f"study {study_name!r}: {len(rows)} of {total} trials, {_ORDER.get(sort, sort)}",
        title_justify="left",
        caption="* the last reported epoch's accuracy (a pruned or running trial)"
        if any(_leaderboard_accuracy(row).endswith("*") for row in rows)
        else None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,  # no vertical rules: room for the architecture
        collapse_padding=True,
        show_edge=False,
    )
    table.add_column("#", justify="right", no_wrap=True)
    if front is not None:
        table.add_column("front", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("accuracy", justify="right", no_wrap=True)
    # The one column that gives way in a narrow terminal: cut at its end ("…"), never wrapped.
    table.add_column("architecture")
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("MACs", justify="right", no_wrap=True)
    if with_latency:
        table.add_column("latency ms", justify="right", no_wrap=True)
    table.add_column("epochs", justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    for row in rows:
        cells = [str(row["number"])]
        if front is not None:
            cells.append("yes" if row["number"] in front else "")
        cells += [
            row["state"],
            _leaderboard_accuracy(row),
            Text(row["arch_summary"] or "-", no_wrap=True, overflow="ellipsis"),
            _count(row["num_params"]),
            _count(row["macs"]),
        ]
        if with_latency:
            cells.append("-" if row["latency_ms"] is None else f"{row['latency_ms']:.3f}")
        cells.append(str(row["epochs"]))
        cells.append("-" if row["seconds"] is None else f"{row['seconds']:.1f}")
        table.add_row(*cells)
    return table


def print_written(written: list[Any]) -> None:
    """One line per file a command wrote (:class:`nin_search.deploy.Written`); none for a
    stream (``-o /dev/stdout``), whose reader gets the output alone."""
    from nin_search.outputs import written_in_place

    for item in written:
        if written_in_place(item.path):
            continue
        console.print(
            f"wrote {item.path} ({item.what})", markup=False, highlight=False, soft_wrap=True
        )


def progress_bar(*, disable: bool = False) -> Progress:
    """Bars on stderr: what, how far, time spent, time left (estimated), details."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
        disable=disable,
    )


def trials_info(study: Any) -> tuple[int, str]:
    """(finished trials, the progress bar's text: pruned, failed, best accuracy so far)."""
    from optuna.trial import TrialState

    from nin_search.records import TrialRecord
    from nin_search.trials import best_trials, state_counts

    counts = state_counts(study.get_trials(deepcopy=False))
    front = best_trials(study)  # within the limits; several objectives: most accurate first
    best = TrialRecord.from_trial(front[0]).accuracy if front else None
    pruned, failed = counts[TrialState.PRUNED], counts[TrialState.FAIL]
    info = f"pruned {pruned} | failed {failed} | best {format_accuracy(best)}"
    return counts[TrialState.COMPLETE] + pruned, info


# The folder is `optuna.artifact_dir` in the study file; `--artifacts`, its older spelling,
# still works (a hidden alias, see HIDDEN_ALIASES).
ArtifactDirOption = Annotated[
    Path | None,
    typer.Option(
        "--artifact-dir",
        help="Folder of the Optuna artifact store for trained weights (checkpoints go beside it) "
        "[default: the study's optuna.artifact_dir, else beside the SQLite file, e.g. "
        "nin_search-artifacts].",
        show_default=False,
    ),
]
HIDDEN_ALIASES = {"--artifacts": "--artifact-dir"}
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
TrialOption = Annotated[
    int | None,
    typer.Option(
        "--trial", min=0, help="Trial number [default: the best trial].", show_default=False
    ),
]


def expand_aliases(arguments: list[str]) -> list[str]:
    """The command line with each hidden alias (``--artifacts DIR``, ``--artifacts=DIR``)
    spelled as its option; nothing after ``--`` changes."""
    expanded = []
    for index, argument in enumerate(arguments):
        if argument == "--":
            return expanded + arguments[index:]
        name, equals, value = argument.partition("=")
        expanded.append(HIDDEN_ALIASES.get(name, name) + equals + value)
    return expanded
