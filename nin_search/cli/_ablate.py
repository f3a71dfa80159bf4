"""`nin-search ablate`: the paired ablation of the winner, stage by stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nin_search.cli._common import (
    ArtifactDirOption,
    DevicesOption,
    StorageOption,
    StudyDeviceOption,
    StudyNameOption,
    WorkersOption,
    app,
    console,
    err_console,
    format_accuracy,
    progress_bar,
    quiet_optuna,
    refuse_device_and_devices,
)
from nin_search.errors import UserError
from nin_search.records import (
    ABLATION_SEED,
    ABLATION_SOURCE,
    ABLATION_STAGE,
    ABLATION_VARIANT,
    FAIL_REASON,
    ORIGINAL_STAGE,
)
from nin_search.study_files import load_study_config


@app.command()
def ablate(
    study_file: Annotated[
        Path | None,
        typer.Argument(
            help="Study TOML (for its storage, study name and [ablation] settings) "
            "[default: --storage/--study-name].",
            show_default=False,
        ),
    ] = None,
    storage: StorageOption = None,
    study_name: StudyNameOption = None,
    trial_number: Annotated[
        int | None,
        typer.Option(
            "--trial", min=0, help="Ablate this trial [default: the best].", show_default=False
        ),
    ] = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            min=1,
            help="Ablate the best K trials [default: the study's ablation.top, 1].",
            show_default=False,
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            min=1,
            help="Seeds per variant, shared by all variants [default: the study's "
            "ablation.seeds, 3]. Raising it later trains only the new seeds.",
            show_default=False,
        ),
    ] = None,
    device: StudyDeviceOption = None,
    artifact_dir: ArtifactDirOption = None,
    workers: WorkersOption = None,
    devices: DevicesOption = None,
) -> None:
    """Paired ablation of the winner: per stage, the original, the stage flipped (MLP conv <->
    plain) and the flip at equal parameters, each trained with the same seeds."""
    if trial_number is not None and top is not None:
        raise UserError("pass --trial N or --top K, not both")
    refuse_device_and_devices(device, devices)
    if workers != 1:  # workers may be needed: their fork server imports torch meanwhile
        from nin_search.worker_server import start_worker_server

        start_worker_server()
    quiet_optuna()
    from nin_search.ablation import setup_ablation

    setup = setup_ablation(
        storage,
        study_name,
        study_file=load_study_config(study_file) if study_file is not None else None,
        device=device,
        artifact_dir=artifact_dir,
        workers=workers,
        devices=devices,
    )
    run_ablation_with_progress(setup, None, trial_number=trial_number, top=top, seeds=seeds)
    from nin_search.storage_messages import study_options
    from nin_search.study_note import refresh_study_note

    where = study_options(setup.storage_url, setup.study.study_name)
    for line in refresh_study_note(setup.study, where=where):  # also optuna-dashboard's note
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def run_ablation_with_progress(
    setup: Any,
    data: Any,
    *,
    trial_number: int | None = None,
    top: int | None = None,
    seeds: int | None = None,
    live: bool = True,
    quiet: bool = False,
) -> None:
    """Loads the data (unless given), queues the ablation and trains it: a line per finished
    run (none when ``quiet``, as ``optimize -q``), under a progress bar when ``live``.
    Ctrl-C / SIGTERM stop it with their exit codes; a re-run continues."""
    from nin_search.ablation import (
        ablation_workers,
        load_ablation_data,
        prepare_ablation,
        run_queued_ablation,
    )

    config = setup.config
    if data is None:
        where = setup.where.load_device
        with err_console.status(f"loading {config.data.dataset} onto {where}"):
            data = load_ablation_data(setup)
    progress = progress_bar(disable=not live)
    epoch_task = progress.add_task("run", total=config.train.epochs, info="", visible=False)

    def on_epoch(trial: Any, result: Any) -> None:
        progress.update(
            epoch_task,
            visible=True,
            description=_run_label(trial.user_attrs),
            completed=result.epoch,
            info=f"val {format_accuracy(result.val_accuracy)}",
        )

    prepared = prepare_ablation(
        setup.study,
        config,
        data=data,
        artifact_dir=setup.artifact_dir,
        trial_number=trial_number,
        top=top,
        seeds=seeds,
        on_epoch=on_epoch,
    )
    plan = prepared.plan
    say = err_console.print if not quiet else lambda *args, **kwargs: None
    workers = ablation_workers(setup, plan)
    others = (
        f", and {plan.others} waiting run(s) of trial(s) {list(plan.other_sources)} that an "
        "earlier ablate queued (the queue is shared: trained too)"
        if plan.others
        else ""
    )
    on = f" in {workers} worker(s) on {', '.join(setup.devices)}" if workers else ""
    say(
        f"ablation of trial(s) {prepared.sources} in study {prepared.study.study_name!r}: "
        f"{plan.total} runs, {plan.done} done before, {plan.queued} to train{others}{on}",
        highlight=False,
        soft_wrap=True,
    )
    total = plan.total + plan.others
    runs_task = progress.add_task("ablation runs", total=total, completed=plan.done, info="")
    finished: list[Any] = []  # the runs this command saw finish

    def print_run(trial: Any) -> None:
        finished.append(trial)
        if not quiet:  # above the bars when live, as optimize prints its trial lines
            progress.console.print(_run_line(trial), markup=False, highlight=False, soft_wrap=True)

    def on_trial(ablation: Any, trial: Any) -> None:
        progress.advance(runs_task)
        progress.reset(epoch_task, total=config.train.epochs, visible=False)
        print_run(trial)

    # Workers report finished runs only: a line for each that finishes from now on.
    seen = {t.number for t in prepared.study.get_trials(deepcopy=False) if t.state.is_finished()}

    def on_poll(ablation: Any) -> None:
        for trial in ablation.get_trials(deepcopy=False):
            if trial.state.is_finished() and trial.number not in seen:
                seen.add(trial.number)
                progress.advance(runs_task)
                print_run(trial)

    with progress:
        outcome = run_queued_ablation(setup, prepared, callbacks=[on_trial], on_poll=on_poll)
    from nin_search.recovery import failure_summary

    for reason, count in failure_summary(finished):
        err_console.print(
            f"  {count} ablation run(s) failed: {reason}", markup=False, highlight=False
        )
    if outcome.exit_code:
        err_console.print(outcome.message, highlight=False)
        raise typer.Exit(outcome.exit_code)
    say(f"ablation: {plan.total} runs in study {prepared.study.study_name!r}", highlight=False)


def _run_line(trial: Any) -> str:
    """A finished ablation run in one line: which run, state, accuracy, epochs, seconds."""
    parts = [f"ablation run {_run_label(trial.user_attrs)}", trial.state.name.lower()]
    if FAIL_REASON in trial.user_attrs:
        parts.append(f"({trial.user_attrs[FAIL_REASON]})")
    if trial.value is not None:
        parts.append(format_accuracy(trial.value))
    from nin_search.trials import epochs_reached

    epochs = epochs_reached(trial)
    parts.append(f"{epochs} epoch{'s' * (epochs != 1)}")
    from nin_search.summary import trial_seconds

    seconds = trial_seconds(trial)
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)


def _run_label(attrs: dict[str, Any]) -> str:
    """An ablation run in words: its source trial, stage variant and seed."""
    if ABLATION_SOURCE not in attrs:
        return "(none)"
    stage = attrs.get(ABLATION_STAGE, ORIGINAL_STAGE)
    label = "original" if stage == ORIGINAL_STAGE else f"s{stage} {attrs[ABLATION_VARIANT]}"
    return f"#{attrs[ABLATION_SOURCE]} {label} seed {attrs[ABLATION_SEED]}"
