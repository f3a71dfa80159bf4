"""`nin-search optimize`: one process, or several workers sharing the study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nin_search.cli._common import (
    ArtifactDirOption,
    StorageOption,
    StudyNameOption,
    app,
    console,
    err_console,
    format_accuracy,
    progress_bar,
    quiet_optuna,
    resolve_config,
    summary_table,
    trials_info,
)
from nin_search.config import MAX_SEED, shipped_studies


@app.command()
def optimize(
    study_file: Annotated[
        Path | None,
        typer.Argument(
            help="Study TOML file, or the name of a shipped study: "
            f"{', '.join(shipped_studies())} [default: the embedded digits study].",
            show_default=False,
        ),
    ] = None,
    n_trials: Annotated[
        int | None,
        typer.Option(
            "--n-trials",
            min=1,
            help="Target number of finished (completed + pruned) trials in the study; a re-run "
            "only runs the missing ones [default: the study file's].",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0.001, help="Stop starting trials after S seconds.", show_default=False
        ),
    ] = None,
    storage: StorageOption = None,
    study_name: StudyNameOption = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="auto, cpu, cuda, cuda:N or mps [default: the study file's].",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            max=MAX_SEED,
            help="Sampler and trial seed [default: the study file's].",
            show_default=False,
        ),
    ] = None,
    artifact_dir: ArtifactDirOption = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Worker processes sharing the study on this machine (CPU cores are split "
            "between them; with --devices each gets its own device).",
        ),
    ] = 1,
    devices: Annotated[
        str | None,
        typer.Option(
            "--devices",
            help="Comma-separated devices given to the workers in turn, e.g. cuda:0,cuda:1.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run (or resume) a search: train short runs, prune bad ones, store all in the database."""
    config = resolve_config(
        study_file, n_trials=n_trials, timeout=timeout, device=device, seed=seed
    )
    from nin_search.search import load_data, open_search, plan_search

    plan = plan_search(
        config,
        storage_url=storage or config.optuna.storage,
        study_name=config.study.name if study_name is None else study_name,
        artifact_dir=artifact_dir,
        workers=workers,
        devices=devices,
    )
    quiet_optuna()
    with err_console.status(f"loading {config.data.dataset} onto {plan.load_device}"):
        data = load_data(plan)
    opened = open_search(plan, data)
    _print_start(plan, opened, data)
    study = opened.study
    started = len(study.get_trials(deepcopy=False))
    outcome = _run_with_progress(plan, opened, data)
    if outcome.exit_code:
        err_console.print(outcome.message, highlight=False)
        raise typer.Exit(outcome.exit_code)
    if config.ablation.after_search:
        from nin_search.cli._ablate import run_ablation_with_progress

        run_ablation_with_progress(
            study, config, data if plan.workers == 1 else None, plan.artifact_dir
        )
    from nin_search.dashboard import refresh_study_note

    verdicts = refresh_study_note(study)
    console.print(summary_table(study))
    for line in verdicts:
        console.print(f"  {line}", markup=False, highlight=False)
    this_run = study.get_trials(deepcopy=False)[started:]
    _print_failures(this_run)
    _next_steps(plan.storage_url, plan.study_name, plan.artifact_dir)
    _fail_if_nothing_finished(this_run)


def _print_start(plan: Any, opened: Any, data: Any) -> None:
    from nin_search.storage import display_url

    if opened.dead or opened.requeued:
        err_console.print(
            f"recovered: failed {len(opened.dead)} trial(s) of dead local workers {opened.dead}; "
            f"re-queued {len(opened.requeued)} interrupted trial(s) {opened.requeued}",
            highlight=False,
        )
    err_console.print(
        f"study {plan.study_name!r} in {display_url(plan.storage_url)}: "
        f"{opened.finished}/{plan.config.study.n_trials} trials finished; "
        f"{len(data.train)} train / {len(data.val)} val images; "
        f"{plan.workers} worker(s) on {', '.join(plan.devices)}",
        highlight=False,
    )


def _run_with_progress(plan: Any, opened: Any, data: Any) -> Any:
    """Runs the search with a progress bar: trials (and, in this process, epochs)."""
    from nin_search.search import run_search

    config = plan.config
    progress = progress_bar()
    trials_task = progress.add_task(
        "trials", total=config.study.n_trials, completed=opened.finished, info=""
    )
    # Epochs are seen only in this process; worker processes report finished trials.
    epoch_task = progress.add_task("trial", total=config.train.epochs, info="")
    progress.update(epoch_task, visible=plan.workers == 1)

    def on_epoch(trial: Any, result: Any) -> None:
        progress.update(
            epoch_task,
            description=f"trial #{trial.number}",
            completed=result.epoch,
            info=f"val {format_accuracy(result.val_accuracy)}",
        )

    def on_trial(study: Any, trial: Any) -> None:
        done, info = trials_info(study)
        progress.update(trials_task, completed=done, info=info)
        progress.reset(epoch_task, total=config.train.epochs, description="trial", info="")

    def on_poll(study: Any) -> None:
        done, info = trials_info(study)
        progress.update(trials_task, completed=done, info=f"{info} | {plan.workers} workers")

    with progress:
        return run_search(
            plan, opened.study, data, on_epoch=on_epoch, on_trial=on_trial, on_poll=on_poll
        )


def _print_failures(trials: list[Any]) -> None:
    from nin_search.workers import failure_summary

    for reason, count in failure_summary(trials):
        err_console.print(f"  {count} trial(s) failed: {reason}", markup=False, highlight=False)


def _fail_if_nothing_finished(trials: list[Any]) -> None:
    """Exit code 1 when every trial this run started failed: a script must not go on."""
    from nin_search.search import every_trial_failed

    reason = every_trial_failed(trials)
    if reason is None:
        return
    err_console.print(
        f"error: every trial of this run failed ({len(trials)}), e.g. {reason}; fix the study "
        "file (see the reasons above) and run again",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)


def _next_steps(storage_url: str, study_name: str, artifact_dir: Path) -> None:
    from nin_search.storage import display_url

    storage = display_url(storage_url)
    console.print("\nNext:")
    console.print(
        f"  optuna-dashboard {storage} --artifact-dir {artifact_dir}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  nin-search best --storage {storage} --study-name {study_name}",
        markup=False,
        highlight=False,
    )
