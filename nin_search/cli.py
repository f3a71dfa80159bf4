"""The ``nin-search`` command line (typer + rich). The only module that prints."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nin_search.config import DEFAULT_STORAGE, StudyConfig, default_config, load_study_config
from nin_search.errors import UserError

app = typer.Typer(
    name="nin-search",
    help="Search when MLP conv (Network-in-Network) layers beat plain conv layers, on your data.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console()
err_console = Console(stderr=True)

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


def _fail(message: str) -> NoReturn:
    raise UserError(message)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _resolve_config(study_file: Path | None, **overrides: Any) -> StudyConfig:
    config = default_config() if study_file is None else load_study_config(study_file)
    study_updates = {k: v for k, v in overrides.items() if k in ("seed", "n_trials", "timeout")}
    study_updates = {k: v for k, v in study_updates.items() if v is not None}
    if study_updates:
        config = config.model_copy(update={"study": config.study.model_copy(update=study_updates)})
    if overrides.get("device"):
        config = config.model_copy(
            update={"train": config.train.model_copy(update={"device": overrides["device"]})}
        )
    return config


def _format_accuracy(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _trial_column(trial: Any) -> list[str]:
    if trial is None:
        return ["-"] * 6
    hparams = ("optimizer", "learning_rate", "batch_size")
    training = ", ".join(
        f"{trial.params[k]:.3g}" if isinstance(trial.params.get(k), float) else str(trial.params[k])
        for k in hparams
        if k in trial.params
    )
    value = _format_accuracy(trial.value) if trial.value is not None else trial.state.name.lower()
    return [
        f"#{trial.number}",
        value,
        str(trial.user_attrs.get("arch_summary", "?")),
        f"{trial.user_attrs.get('params', 0):,}",
        f"{trial.user_attrs.get('macs', 0):,}",
        training,
    ]


def _summary_table(study: Any) -> Table:
    """The best trial next to the two baselines (NIN-shaped, all-plain)."""
    from optuna.trial import TrialState

    from nin_search.study import baseline_trials

    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    caption = (
        f"{counts[TrialState.COMPLETE]} completed, {counts[TrialState.PRUNED]} pruned, "
        f"{counts[TrialState.FAIL]} failed, {counts[TrialState.RUNNING]} running"
    )
    table = Table(title=f"study {study.study_name!r}: {caption}", title_justify="left")
    table.add_column("")
    best = study.best_trial if counts[TrialState.COMPLETE] else None
    baselines = baseline_trials(study)
    columns = {
        "best": best,
        "NIN baseline": baselines.get("nin"),
        "plain baseline": baselines.get("plain"),
    }
    for title in columns:
        table.add_column(title, overflow="fold")
    rows = ["trial", "val accuracy", "architecture", "params", "MACs / image", "opt, lr, batch"]
    values = [_trial_column(trial) for trial in columns.values()]
    for index, row in enumerate(rows):
        table.add_row(row, *(column[index] for column in values))
    return table


def _best_json(study: Any) -> dict[str, Any]:
    from optuna.trial import TrialState

    from nin_search.study import baseline_trials

    def describe(trial: Any) -> dict[str, Any] | None:
        if trial is None:
            return None
        return {
            "number": trial.number,
            "state": trial.state.name.lower(),
            "value": trial.value,
            "params": trial.params,
            "arch": trial.user_attrs.get("arch"),
            "arch_summary": trial.user_attrs.get("arch_summary"),
            "num_params": trial.user_attrs.get("params"),
            "macs": trial.user_attrs.get("macs"),
        }

    trials = study.get_trials(deepcopy=False)
    completed = any(t.state == TrialState.COMPLETE for t in trials)
    baselines = baseline_trials(study)
    return {
        "study": study.study_name,
        "trials": {
            state.name.lower(): sum(t.state == state for t in trials) for state in TrialState
        },
        "best": describe(study.best_trial if completed else None),
        "baselines": {kind: describe(baselines.get(kind)) for kind in ("nin", "plain")},
    }


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


@app.command()
def optimize(
    study_file: Annotated[
        Path | None,
        typer.Argument(help="Study TOML [default: the embedded digits study].", show_default=False),
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
    config = _resolve_config(
        study_file, n_trials=n_trials, timeout=timeout, device=device, seed=seed
    )
    storage_url = storage or config.optuna.storage
    name = study_name or config.study.name

    from nin_search.study import check_storage_url

    check_storage_url(storage_url, must_exist=False)
    _quiet_optuna()
    from nin_search.data import load_search_data
    from nin_search.study import artifact_dir_for, finished_trials, open_study
    from nin_search.train import resolve_device
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
    }
    study = open_study(config, storage_url=storage_url, study_name=name, data_info=data_info)
    artifact_dir = artifact_dir_for(
        storage_url, str(artifacts) if artifacts else config.optuna.artifact_dir
    )
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
        f"study {name!r} in {storage_url}: {already}/{target} trials finished; "
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
    from nin_search.dashboard import refresh_study_note

    verdicts = refresh_study_note(study)
    console.print(_summary_table(study))
    for line in verdicts:
        console.print(f"  {line}", markup=False, highlight=False)
    _print_failures(study.get_trials(deepcopy=False)[started:])
    _next_steps(storage_url, name, artifact_dir)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
    )


def _trials_info(study: Any) -> tuple[int, str]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    failed = sum(t.state == TrialState.FAIL for t in trials)
    completed = [t.value for t in trials if t.state == TrialState.COMPLETE]
    best = max(completed, default=None)
    info = f"pruned {pruned} | failed {failed} | best {_format_accuracy(best)}"
    return len(completed) + pruned, info


def _optimize_in_process(config: StudyConfig, study: Any, data: Any, artifact_dir: Path) -> None:
    from nin_search.objective import Objective
    from nin_search.study import KeepBestWeights, finished_trials, make_artifact_store
    from nin_search.study import optimize as run_optimize
    from nin_search.workers import Terminated, handle_sigterm

    store = make_artifact_store(artifact_dir)
    progress = _progress()
    trials_task = progress.add_task(
        "trials", total=config.study.n_trials, completed=len(finished_trials(study)), info=""
    )
    epoch_task = progress.add_task("trial", total=config.train.epochs, info="")

    def on_epoch(trial: Any, result: Any) -> None:
        progress.update(
            epoch_task,
            description=f"trial #{trial.number}",
            completed=result.epoch,
            info=f"val {_format_accuracy(result.val_accuracy)}",
        )

    def on_trial(study: Any, trial: Any) -> None:
        done, info = _trials_info(study)
        progress.update(trials_task, completed=done, info=info)
        progress.reset(epoch_task, total=config.train.epochs, description="trial", info="")

    handle_sigterm()
    objective = Objective(config, data, artifact_store=store, on_epoch=on_epoch)
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
            f"{'terminated' if code == 143 else 'interrupted'}: the running trial is recorded "
            "as failed and will be retried; run the same command again to resume the study"
        )
        raise typer.Exit(code) from None


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

    from nin_search.study import finished_trials
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
    progress = _progress()
    task = progress.add_task("trials", total=config.study.n_trials, info="")
    interrupted = False
    with progress:
        while any(process.is_alive() for process in processes):
            try:
                done, info = _trials_info(study)
                progress.update(task, completed=done, info=f"{info} | {workers} workers")
                time.sleep(1.0)
            except KeyboardInterrupt:
                interrupted = True  # Ctrl-C reached the workers too; wait for them
        done, info = _trials_info(study)
        progress.update(task, completed=done, info=info)
    for process in processes:
        process.join()
    codes = [process.exitcode for process in processes]
    if interrupted or any(code in (130, 143, -signal.SIGTERM) for code in codes):
        err_console.print("workers stopped; run the same command again to resume the study")
        raise typer.Exit(143 if 143 in codes else 130)
    if any(code != 0 for code in codes):
        err_console.print(f"worker exit codes {codes}; re-run the same command to resume")


def _print_failures(trials: list[Any]) -> None:
    from nin_search.workers import failure_summary

    for reason, count in failure_summary(trials):
        err_console.print(f"  {count} trial(s) failed: {reason}", markup=False, highlight=False)


@app.command()
def best(
    storage: Annotated[
        str, typer.Option("--storage", help="Optuna storage URL.")
    ] = DEFAULT_STORAGE,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name",
            help="Study name [default: the storage's only study].",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the best trial of an existing study."""
    _quiet_optuna()
    from nin_search.study import load_study

    study = load_study(storage, study_name)
    if as_json:
        console.print_json(json.dumps(_best_json(study)))
        return
    console.print(_summary_table(study))


ArtifactsOption = Annotated[
    Path | None,
    typer.Option(
        "--artifacts",
        help="Artifact store folder that optimize used [default: beside the SQLite file].",
        show_default=False,
    ),
]
TrialOption = Annotated[
    int | None,
    typer.Option(
        "--trial", min=0, help="Trial number [default: the best trial].", show_default=False
    ),
]


def _study_data_info(study: Any) -> dict[str, Any]:
    info = study.user_attrs.get("data")
    if not info:
        raise UserError(
            f"study {study.study_name!r} was not created by nin-search (no data attrs); "
            "export works on studies written by `nin-search optimize`"
        )
    return info


@app.command()
def export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The Python file to write.", show_default=False)
    ],
    storage: Annotated[
        str, typer.Option("--storage", help="Optuna storage URL.")
    ] = DEFAULT_STORAGE,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name",
            help="Study name [default: the storage's only study].",
            show_default=False,
        ),
    ] = None,
    trial_number: TrialOption = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Also write the trial's trained weights here (safetensors).",
            show_default=False,
        ),
    ] = None,
    class_name: Annotated[
        str | None,
        typer.Option(
            "--class-name",
            help="Model class name [default: from the study name].",
            show_default=False,
        ),
    ] = None,
    artifacts: ArtifactsOption = None,
) -> None:
    """Write a trial's architecture as one standalone PyTorch file (and its trained weights)."""
    _quiet_optuna()
    from nin_search.export import ExportInfo, export_source
    from nin_search.model import build_model
    from nin_search.spec import ArchSpec
    from nin_search.study import artifact_dir_for, download_weights, load_study, pick_trial
    from nin_search.weights import load_weights

    if not output.parent.is_dir():
        raise UserError(f"folder {str(output.parent)!r} for --output does not exist; create it")
    study = load_study(storage, study_name)
    trial = pick_trial(study, trial_number)
    data_info = _study_data_info(study)
    spec = ArchSpec.from_dict(trial.user_attrs["arch"])
    info = ExportInfo(
        in_channels=data_info["in_channels"],
        num_classes=data_info["num_classes"],
        image_size=data_info["image_size"],
        study_name=study.study_name,
        trial_number=trial.number,
        val_accuracy=trial.value,
        params=trial.user_attrs.get("params"),
        macs=trial.user_attrs.get("macs"),
        class_names=tuple(data_info.get("classes", ())),
        weights_file=weights.name if weights else None,
    )
    try:
        source = export_source(spec, info, class_name=class_name)
    except ValueError as error:
        raise UserError(f"{error} Pick another --class-name.") from None
    if weights is not None:
        if not weights.parent.is_dir():
            raise UserError(f"folder {str(weights.parent)!r} for --weights does not exist")
        configured = study.user_attrs.get("config", {}).get("optuna", {}).get("artifact_dir")
        artifact_dir = artifact_dir_for(storage, str(artifacts) if artifacts else configured)
        download_weights(study, trial, artifact_dir, weights)
        model = build_model(spec, in_channels=info.in_channels, num_classes=info.num_classes)
        try:
            model.load_state_dict(load_weights(weights), strict=True)
        except RuntimeError:
            weights.unlink()
            raise UserError(
                f"the stored weights of trial {trial.number} do not match its architecture; "
                "retrain it with `nin-search train`"
            ) from None
    output.write_text(source, encoding="utf-8")
    console.print(
        f"wrote {output} (trial #{trial.number}, {spec.summary()})", markup=False, highlight=False
    )
    if weights is not None:
        console.print(f"wrote {weights} (safetensors)", markup=False, highlight=False)


@app.command(name="train")
def train_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for weights, model.py and history.json.")
    ] = Path("final"),
    storage: Annotated[
        str, typer.Option("--storage", help="Optuna storage URL.")
    ] = DEFAULT_STORAGE,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name",
            help="Study name [default: the storage's only study].",
            show_default=False,
        ),
    ] = None,
    trial_number: TrialOption = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            help="Epochs [default: 3x the study's epochs per trial].",
            show_default=False,
        ),
    ] = None,
    schedule: Annotated[
        str, typer.Option("--schedule", help="Learning-rate schedule: cosine or step.")
    ] = "cosine",
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="auto, cpu, cuda, cuda:N or mps [default: the study's].",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="Seed [default: the trial's].", show_default=False),
    ] = None,
) -> None:
    """Retrain a trial's architecture from scratch on train+val; report test accuracy."""
    _quiet_optuna()
    from optuna.trial import FixedTrial

    from nin_search.export import ExportInfo, export_source
    from nin_search.retrain import retrain
    from nin_search.space import suggest_hyperparameters
    from nin_search.spec import ArchSpec
    from nin_search.study import load_study, pick_trial
    from nin_search.train import resolve_device
    from nin_search.weights import save_weights

    if schedule not in ("cosine", "step"):
        raise UserError(f"--schedule must be cosine or step, but got {schedule!r}")
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {str(output)!r} is a file; pass a folder")
    study = load_study(storage, study_name)
    trial = pick_trial(study, trial_number)
    if "config" not in study.user_attrs:
        raise UserError(f"study {study.study_name!r} was not created by nin-search optimize")
    config = StudyConfig.model_validate(study.user_attrs["config"])
    spec = ArchSpec.from_dict(trial.user_attrs["arch"])
    hparams = suggest_hyperparameters(FixedTrial(trial.params), config.train)
    epochs = epochs or 3 * config.train.epochs
    seed = trial.user_attrs.get("seed", 0) if seed is None else seed
    training_device = resolve_device(device or config.train.device)
    progress = _progress()
    task = progress.add_task(f"trial #{trial.number}", total=epochs, info="")

    def on_epoch(epoch: Any) -> None:
        progress.update(
            task,
            completed=epoch.epoch,
            info=f"train {_format_accuracy(epoch.train_accuracy)} | "
            f"test {_format_accuracy(epoch.test_accuracy)}",
        )

    with progress:
        result = retrain(
            config,
            spec,
            hparams,
            epochs=epochs,
            seed=seed,
            device=training_device,
            schedule=schedule,
            on_epoch=on_epoch,
        )
    output.mkdir(parents=True, exist_ok=True)
    save_weights(result.model.state_dict(), output / "weights.safetensors")
    data_info = _study_data_info(study)
    info = ExportInfo(
        in_channels=data_info["in_channels"],
        num_classes=data_info["num_classes"],
        image_size=data_info["image_size"],
        study_name=study.study_name,
        trial_number=trial.number,
        params=trial.user_attrs.get("params"),
        macs=trial.user_attrs.get("macs"),
        class_names=tuple(data_info.get("classes", ())),
        weights_file="weights.safetensors",
    )
    (output / "model.py").write_text(export_source(spec, info), encoding="utf-8")
    summary = {
        "study": study.study_name,
        "trial": trial.number,
        "baseline": trial.user_attrs.get("baseline"),
        "arch": spec.to_dict(),
        "arch_summary": spec.summary(),
        "hyperparameters": hparams.to_dict(),
        "epochs": epochs,
        "schedule": schedule,
        "seed": seed,
        "num_train": result.num_train,
        "num_test": result.num_test,
        "search_val_accuracy": trial.value,
        "test_accuracy": result.test_accuracy,
        "history": result.history_dicts(),
    }
    (output / "history.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    console.print(
        f"trial #{trial.number} retrained for {epochs} epochs on {result.num_train} images: "
        f"test accuracy {_format_accuracy(result.test_accuracy)} on {result.num_test} test images",
        markup=False,
        highlight=False,
    )
    console.print(
        f"wrote {output}/weights.safetensors, model.py, history.json", markup=False, highlight=False
    )


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    storage: Annotated[
        str, typer.Option("--storage", help="Optuna storage URL.")
    ] = DEFAULT_STORAGE,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name",
            help="Study name [default: the storage's only study].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML report on where MLP conv helped, and print the verdict."""
    _quiet_optuna()
    from nin_search.report import verdict_lines, write_report
    from nin_search.study import load_study

    if not output.parent.is_dir():
        raise UserError(f"folder {str(output.parent)!r} for --output does not exist; create it")
    study = load_study(storage, study_name)
    verdicts = write_report(study, output)
    console.print(
        f"Per-stage verdict for study {study.study_name!r} (MLP conv vs plain conv):",
        markup=False,
        highlight=False,
    )
    for line in verdict_lines(verdicts):
        console.print(f"  {line}", markup=False, highlight=False)
    console.print(f"wrote {output} (opens offline)", markup=False, highlight=False)


@app.command()
def dashboard(
    storage: Annotated[
        str, typer.Option("--storage", help="Optuna storage URL.")
    ] = DEFAULT_STORAGE,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8080,
    artifacts: ArtifactsOption = None,
) -> None:
    """Start optuna-dashboard on the storage, with the trained weights as artifacts."""
    _quiet_optuna()
    from nin_search.dashboard import make_http_server, refresh_study_note
    from nin_search.study import load_studies

    server = make_http_server(storage, host=host, port=port, artifact_dir=artifacts)
    for study in load_studies(storage):
        refresh_study_note(study)
    url = f"http://{host}:{server.server_port}/dashboard/"
    console.print(
        f"optuna-dashboard for {storage} at {url} (Ctrl-C to stop)", markup=False, highlight=False
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as error:
        err_console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
