"""`nin-search optimize`: one process, or several workers sharing the study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nin_search.cli._common import (
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
from nin_search.config import MAX_SEED, StudyConfig, shipped_studies
from nin_search.errors import UserError
from nin_search.records import PREPROCESSING


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
    artifacts: Annotated[
        Path | None,
        typer.Option(
            "--artifacts",
            help="Folder of the Optuna artifact store for trained weights [default: beside the "
            "SQLite file, e.g. nin_search-artifacts].",
            show_default=False,
        ),
    ] = None,
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
    storage_url = storage or config.optuna.storage
    name = config.study.name if study_name is None else study_name

    from nin_search.storage import check_storage_url, display_url

    check_storage_url(storage_url, must_exist=False)
    from nin_search.artifacts import artifact_dir_for, checkpoint_dir_for
    from nin_search.outputs import check_folder
    from nin_search.study import check_study_name

    check_study_name(name)
    artifact_dir = artifact_dir_for(
        storage_url, str(artifacts) if artifacts else config.optuna.artifact_dir
    )
    # Checked before the study exists: a folder that cannot be written leaves nothing behind.
    check_folder("--artifacts", artifact_dir)
    check_folder("the checkpoint folder", checkpoint_dir_for(artifact_dir, name))
    quiet_optuna()
    from nin_search.data import load_search_data
    from nin_search.devices import resolve_device
    from nin_search.study import open_study
    from nin_search.trials import finished_trials
    from nin_search.workers import fail_dead_local_trials, requeue_interrupted

    if workers < 1:
        raise UserError(f"--workers must be >= 1, but got {workers}")
    device_names = [d.strip() for d in devices.split(",") if d.strip()] if devices else []
    for device_name in device_names:
        resolve_device(device_name)
    training_device = resolve_device(device_names[0] if device_names else config.train.device)
    # With several workers each loads its own copy; this one only needs the data's shape.
    load_device = training_device if workers == 1 else "cpu"
    with err_console.status(f"loading {config.data.dataset} onto {load_device}"):
        data = load_search_data(config.data, device=load_device)
    data_info = {
        "in_channels": data.in_channels,
        "num_classes": data.num_classes,
        "image_size": data.image_size,
        "classes": list(data.classes),
        PREPROCESSING: data.preprocessing.to_dict(),  # what export writes into the model file
    }
    study = open_study(config, storage_url=storage_url, study_name=name, data_info=data_info)
    from nin_search.artifacts import forget_missing_weights, make_artifact_store

    forget_missing_weights(study, make_artifact_store(artifact_dir))  # entries of lost files
    dead = fail_dead_local_trials(study)
    requeued = requeue_interrupted(study)
    if dead or requeued:
        err_console.print(
            f"recovered: failed {len(dead)} trial(s) of dead local workers {dead}; "
            f"re-queued {len(requeued)} interrupted trial(s) {requeued}",
            highlight=False,
        )
    target = config.study.n_trials
    already = len(finished_trials(study))
    err_console.print(
        f"study {name!r} in {display_url(storage_url)}: {already}/{target} trials finished; "
        f"{len(data.train)} train / {len(data.val)} val images; "
        f"{workers} worker(s) on {', '.join(device_names) or str(training_device)}",
        highlight=False,
    )
    started = len(study.get_trials(deepcopy=False))
    if workers == 1:
        _optimize_in_process(config, study, data, artifact_dir)
    else:
        _optimize_with_workers(
            config,
            study,
            storage_url,
            artifact_dir,
            workers,
            device_names or [str(training_device)],
        )
    if config.ablation.after_search:
        from nin_search.cli._ablate import run_ablation_with_progress

        run_ablation_with_progress(study, config, data if workers == 1 else None, artifact_dir)
    from nin_search.dashboard import refresh_study_note

    verdicts = refresh_study_note(study)
    console.print(summary_table(study))
    for line in verdicts:
        console.print(f"  {line}", markup=False, highlight=False)
    this_run = study.get_trials(deepcopy=False)[started:]
    _print_failures(this_run)
    _next_steps(display_url(storage_url), name, artifact_dir)
    _fail_if_nothing_finished(this_run)


def _optimize_in_process(config: StudyConfig, study: Any, data: Any, artifact_dir: Path) -> None:
    from nin_search.artifacts import KeepBestWeights, checkpoint_dir_for, make_artifact_store
    from nin_search.objective import Objective
    from nin_search.study import optimize as run_optimize
    from nin_search.trials import finished_trials
    from nin_search.workers import Terminated, handle_sigterm

    store = make_artifact_store(artifact_dir)
    progress = progress_bar()
    trials_task = progress.add_task(
        "trials", total=config.study.n_trials, completed=len(finished_trials(study)), info=""
    )
    epoch_task = progress.add_task("trial", total=config.train.epochs, info="")

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

    handle_sigterm()
    objective = Objective(
        config,
        data,
        artifact_store=store,
        checkpoint_dir=checkpoint_dir_for(artifact_dir, study.study_name),
        on_epoch=on_epoch,
    )
    try:
        with progress:
            run_optimize(
                study,
                objective,
                n_trials=config.study.n_trials,
                timeout=config.study.timeout,
                callbacks=[KeepBestWeights(store, keep=config.study.keep_weights), on_trial],
            )
    except KeyboardInterrupt as interrupt:
        code = 143 if isinstance(interrupt, Terminated) else 130
        err_console.print(
            f"{'terminated' if code == 143 else 'interrupted'}: {_interrupted_trials(study)}"
            "run the same command again to resume the study",
            highlight=False,
        )
        raise typer.Exit(code) from None


def _interrupted_trials(study: Any) -> str:
    """What happened to the trial(s) the interrupt stopped; true to the retry rule."""
    from optuna.trial import TrialState

    from nin_search.records import INTERRUPTED, RETRY_OF

    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs.get(RETRY_OF) for trial in trials}
    stopped = [
        trial.number
        for trial in trials
        if trial.state == TrialState.FAIL
        and trial.user_attrs.get(INTERRUPTED)
        and trial.number not in retried
    ]
    if not stopped:
        return "no trial was running; "
    return f"trial(s) {stopped} recorded as failed, and the next run retries them; "


def _optimize_with_workers(
    config: StudyConfig,
    study: Any,
    storage_url: str,
    artifact_dir: Path,
    workers: int,
    devices: list[str],
) -> None:
    import multiprocessing
    import os
    import signal
    import time

    from nin_search.trials import finished_trials
    from nin_search.workers import WorkerSpec, run_worker, split_quota

    remaining = config.study.n_trials - len(finished_trials(study))
    cpu_only = all(device.startswith("cpu") for device in devices)
    threads = max(1, (os.cpu_count() or 1) // workers) if cpu_only else 1
    context = multiprocessing.get_context("spawn")
    processes = []
    for index, quota in enumerate(split_quota(remaining, workers)):
        spec = WorkerSpec(
            config=config.model_dump(mode="json"),
            storage_url=storage_url,
            study_name=study.study_name,
            device=devices[index % len(devices)],
            threads=threads,
            quota=quota,
            artifact_dir=str(artifact_dir),
            worker_index=index,
        )
        process = context.Process(
            target=run_worker, args=(spec,), name=f"nin-search-worker-{index}"
        )
        process.start()
        processes.append(process)

    def forward_sigterm(signum: int, frame: Any) -> None:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward_sigterm)
    progress = progress_bar()
    task = progress.add_task("trials", total=config.study.n_trials, info="")
    interrupted = False
    with progress:
        while any(process.is_alive() for process in processes):
            try:
                done, info = trials_info(study)
                progress.update(task, completed=done, info=f"{info} | {workers} workers")
                time.sleep(1.0)
            except KeyboardInterrupt:
                interrupted = True  # Ctrl-C reached the workers too; wait for them
        done, info = trials_info(study)
        progress.update(task, completed=done, info=info)
    for process in processes:
        process.join()
    codes = [process.exitcode for process in processes]
    if interrupted or any(code in (130, 143, -signal.SIGTERM) for code in codes):
        err_console.print("workers stopped; run the same command again to resume the study")
        raise typer.Exit(143 if 143 in codes else 130)
    if any(code != 0 for code in codes):
        # A worker died (killed, crashed): fail its trial now and queue it again.
        from nin_search.workers import fail_dead_local_trials, requeue_interrupted

        dead = fail_dead_local_trials(study)
        requeue_interrupted(study)
        err_console.print(
            f"worker exit codes {codes}: a worker died; its trial(s) {dead} were failed and "
            "queued again; run the same command again to finish the study"
        )
        raise typer.Exit(1)


def _print_failures(trials: list[Any]) -> None:
    from nin_search.workers import failure_summary

    for reason, count in failure_summary(trials):
        err_console.print(f"  {count} trial(s) failed: {reason}", markup=False, highlight=False)


def _fail_if_nothing_finished(trials: list[Any]) -> None:
    """Exit code 1 when every trial this run started failed: a script must not go on."""
    from nin_search.trials import FINISHED_STATES
    from nin_search.workers import failure_summary

    if not trials or any(trial.state in FINISHED_STATES for trial in trials):
        return
    reasons = failure_summary(trials)
    if not reasons:
        return
    reason, _ = reasons[0]
    err_console.print(
        f"error: every trial of this run failed ({len(trials)}), e.g. {reason}; fix the study "
        "file (see the reasons above) and run again",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)


def _next_steps(storage: str, study_name: str, artifact_dir: Path) -> None:
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
