"""`nin-search optimize`: one process, or several workers sharing the study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nin_search.cli._common import (
    DEVICE_HELP,
    ArtifactDirOption,
    DevicesOption,
    StorageOption,
    StudyNameOption,
    WorkersOption,
    app,
    console,
    err_console,
    format_accuracy,
    progress_bar,
    quiet_optuna,
    refuse_device_and_devices,
    refuse_empty_device,
    resolve_config,
    summary_table,
    trials_info,
)
from nin_search.config import MAX_SEED
from nin_search.study_files import shipped_studies


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
            help=f"{DEVICE_HELP} [default: the study file's].",
            show_default=False,
            callback=refuse_empty_device,
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
    workers: WorkersOption = None,
    devices: DevicesOption = None,
    no_progress: Annotated[
        bool,
        typer.Option(
            "--no-progress",
            help="No live progress bars; the line per finished trial is still printed (logs, CI).",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print only errors and the final table and answer (no progress, no trial lines).",
        ),
    ] = False,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            help="Append one JSON line per finished trial to this file (the keys of "
            "`nin-search trials --json`), e.g. trials.jsonl.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run (or resume) a search: train short runs, prune bad ones, store all in the database."""
    refuse_device_and_devices(device, devices)
    config = resolve_config(
        study_file, n_trials=n_trials, timeout=timeout, device=device, seed=seed
    )
    if workers != 1:  # workers may be needed: their fork server imports torch meanwhile
        from nin_search.worker_server import start_worker_server

        start_worker_server()
    from nin_search.search import load_data, open_search, plan_search

    plan = plan_search(
        config,
        storage_url=config.optuna.storage if storage is None else storage,
        study_name=config.study.name if study_name is None else study_name,
        artifact_dir=artifact_dir,
        workers=workers,
        devices=devices,
        log_file=log_file,
    )
    quiet_optuna()
    with err_console.status(f"loading {config.data.dataset} onto {plan.load_device}"):
        data = load_data(plan)
    opened = open_search(plan, data)
    if not quiet:
        _print_start(plan, opened, data)
        if opened.finished >= config.study.n_trials:
            _print_target_reached(opened.finished, opened.waiting, study_file, storage, study_name)
    study = opened.study
    started = len(study.get_trials(deepcopy=False))
    outcome = _run_with_progress(plan, opened, data, live=not (quiet or no_progress), quiet=quiet)
    if outcome.exit_code:
        err_console.print(outcome.message, highlight=False)
        raise typer.Exit(outcome.exit_code)
    from nin_search.search import timeout_note

    stopped = timeout_note(plan, study)
    if stopped is not None and not quiet:
        err_console.print(stopped, markup=False, highlight=False, soft_wrap=True)
    ablated = False
    if config.ablation.after_search:
        from nin_search.ablation import AblationSetup, search_still_running
        from nin_search.cli._ablate import run_ablation_with_progress

        running = search_still_running(study)
        if running:
            err_console.print(
                f"ablation left to the last machine to finish: trial(s) {running} still run "
                "elsewhere and may change the winner (or run `nin-search ablate` once all are "
                "done)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        else:
            run_ablation_with_progress(
                AblationSetup(study, config, plan.artifact_dir, plan.storage_url, plan),
                data,  # on plan.load_device: the ablation's workers, if any, load their own
                live=not (quiet or no_progress),
                quiet=quiet,
            )
            ablated = True
    from nin_search.storage_messages import study_options
    from nin_search.study_note import refresh_study_note

    verdicts = refresh_study_note(study, where=study_options(plan.storage_url, plan.study_name))
    console.print(summary_table(study))
    for line in verdicts:
        console.print(f"  {line}", markup=False, highlight=False)
    this_run = study.get_trials(deepcopy=False)[started:]
    _print_failures(this_run)
    if not quiet:
        from nin_search.artifacts import weights_stored_elsewhere

        _next_steps(
            plan.storage_url,
            plan.study_name,
            plan.artifact_dir,
            ablated=ablated,
            elsewhere=weights_stored_elsewhere(study, plan.artifact_dir),
        )
    _fail_if_nothing_finished(this_run)


def _print_start(plan: Any, opened: Any, data: Any) -> None:
    from nin_search.storage_messages import display_url

    recovered = []
    if opened.dead:
        recovered.append(f"failed {len(opened.dead)} trial(s) of dead local workers {opened.dead}")
    if opened.stale:
        recovered.append(
            f"failed and re-queued {len(opened.stale)} trial(s) {opened.stale} that sent no "
            "heartbeat for over a minute (their machine stopped)"
        )
    if opened.requeued:
        recovered.append(f"re-queued {len(opened.requeued)} interrupted trial(s) {opened.requeued}")
    if recovered:
        err_console.print(f"recovered: {'; '.join(recovered)}", highlight=False, soft_wrap=True)
    from nin_search.records import BASELINES_NOTE

    note = opened.study.user_attrs.get(BASELINES_NOTE)
    if note:
        err_console.print(note, markup=False, highlight=False, soft_wrap=True)
    target = plan.config.study.n_trials
    finished = (
        f"{opened.finished}/{target} trials finished"
        if opened.finished <= target
        else f"{opened.finished} trials finished (target {target})"
    )
    imbalance = data.imbalance()
    if imbalance is not None:
        name, share = imbalance
        err_console.print(
            f"note: class {name!r} is {share:.0%} of the validation images, so a network that "
            f"always answers {name!r} scores {share:.0%} accuracy: read the accuracies against "
            "that",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    err_console.print(
        f"study {plan.study_name!r} in {display_url(plan.storage_url)}: {finished}; "
        f"{len(data.train)} train / {len(data.val)} val images; "
        f"{plan.workers} worker(s) on {', '.join(plan.devices)}",
        highlight=False,
    )


def _print_target_reached(
    finished: int,
    waiting: int,
    study_file: Path | None,
    storage: str | None,
    study_name: str | None,
) -> None:
    from nin_search.storage_messages import display_url

    command = ["nin-search", "optimize"] + ([str(study_file)] if study_file else [])
    command += ["--storage", display_url(storage)] if storage else []
    command += ["--study-name", study_name] if study_name else []
    command += ["--n-trials", str(finished + max(10, waiting))]
    queued = (
        f" {waiting} queued trial(s) (retries of stopped ones, or enqueued) wait and run first "
        "when you raise it."
        if waiting
        else ""
    )
    err_console.print(
        f"the study already has {finished} finished trials, its target (study.n_trials or "
        f"--n-trials): no trial to run.{queued} To search more, raise it: {' '.join(command)}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def trial_line(trial: Any) -> str:
    """One line for a finished trial: number, state, accuracy, architecture, size, epochs,
    seconds (as Optuna, KerasTuner and Ray Tune log each trial)."""
    from optuna.trial import TrialState

    from nin_search.records import TrialRecord
    from nin_search.trials import epochs_reached

    record = TrialRecord.from_trial(trial)
    epochs = epochs_reached(trial)
    if trial.state == TrialState.FAIL:
        state, accuracy = "failed", record.fail_reason or "see the dashboard"
    elif not record.feasible:
        state, accuracy = "complete", f"over a limit: {record.constraint_violation}"
    elif trial.state == TrialState.PRUNED:
        last = trial.intermediate_values.get(epochs)
        state, accuracy = f"pruned at epoch {epochs}", format_accuracy(last)
    else:
        state, accuracy = "complete", format_accuracy(record.accuracy)
    parts = [f"trial #{trial.number}", state, accuracy]
    if trial.state != TrialState.FAIL:
        parts.append(record.arch_summary or "-")
        if record.param_count is not None:
            parts.append(f"{record.param_count:,} params")
        parts.append(f"{epochs} epoch{'s' * (epochs != 1)}")
    from nin_search.summary import trial_seconds

    seconds = trial_seconds(trial)
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)


def _run_with_progress(plan: Any, opened: Any, data: Any, *, live: bool, quiet: bool) -> Any:
    """Runs the search with a line per finished trial and, when ``live``, progress bars:
    trials with the time left (and, in this process, the epochs of the running trial)."""
    from nin_search.search import run_search
    from nin_search.summary import TrialLog

    config = plan.config
    progress = progress_bar(disable=not live)
    log = TrialLog(opened.study, plan.log_file)

    def print_lines(study: Any) -> None:
        for trial in log.update(study):  # written to the log file, if any
            if not quiet:
                progress.console.print(
                    trial_line(trial), markup=False, highlight=False, soft_wrap=True
                )

    trials_task = progress.add_task(
        "trials",
        total=max(config.study.n_trials, opened.finished),
        completed=opened.finished,
        info="",
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
        print_lines(study)

    def on_poll(study: Any) -> None:
        done, info = trials_info(study)
        progress.update(trials_task, completed=done, info=f"{info} | {plan.workers} workers")
        print_lines(study)

    try:
        with progress:
            outcome = run_search(
                plan, opened.study, data, on_epoch=on_epoch, on_trial=on_trial, on_poll=on_poll
            )
            print_lines(opened.study)  # trials that finished after the last poll
            progress.update(epoch_task, visible=False)  # no trial is running any more
            return outcome
    finally:
        log.close()


def _print_failures(trials: list[Any]) -> None:
    from nin_search.recovery import failure_summary

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


def _next_steps(
    storage_url: str,
    study_name: str,
    artifact_dir: Path,
    *,
    ablated: bool,
    elsewhere: list[str],
) -> None:
    """The commands that use this study next, with its storage and name filled in;
    ``elsewhere``: the places of weights other machines stored in their own folders."""
    from nin_search.storage_messages import display_url, study_options

    storage = display_url(storage_url)
    where = study_options(storage_url, study_name)
    steps = [
        (f"nin-search report {where} -o report.html", "the answer, with plots"),
        (f"nin-search trials {where} --top 10", "the leaderboard"),
        (f"nin-search export {where} -o model.py", "the best network as PyTorch code"),
        (f"nin-search train {where} -o final", "retrain it on train+val, test accuracy"),
    ]
    if not ablated:
        steps.append((f"nin-search ablate {where}", "the paired ablation of the winner"))
    live = "watch it live"
    if elsewhere:  # the dashboard serves only this folder's weights
        live += f"; the weights other machines trained are in {', '.join(elsewhere)}"
    steps.append((f"optuna-dashboard {storage} --artifact-dir {artifact_dir}", live))
    console.print("\nNext:")
    for command, what in steps:
        console.print(f"  {command}  # {what}", markup=False, highlight=False, soft_wrap=True)
