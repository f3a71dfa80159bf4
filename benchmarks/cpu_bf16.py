"""Benchmark: training in bf16 vs float32 on the CPU (``train.precision``).

Same model, weights, data, batch size, channels_last layout and steps on both sides; only the
precision differs (``fp32`` vs ``bf16`` autocast). Two networks: the NIN CIFAR-10 preset at
32x32 (batch 128, SGD) and the cifar10-mini study's typical widths (16-32) at 16x16. Runs
alternate (fp32, bf16, bf16, fp32, ...) and the best run of each side is compared. With
``--accuracy`` it also trains the typical network on cifar10-mini (16x16, 4 epochs, 3 seeds) in
both precisions and compares the mean validation accuracy: the paired difference (same seed,
same initial weights, same batches) with its 95% t-interval and n.

The line ``native bf16`` says whether this CPU multiplies bf16 in hardware, and with which of
its flags (``avx512_bf16``, ``amx_bf16``, Arm ``bf16``): AMX's matrix tiles gain far more than
AVX512-BF16's dot products alone (benchmarks/RESULTS.md §3b). Where it does not, PyTorch
emulates bf16 (slower than float32), so ``precision = "auto"`` stays float32 there, and the
ratio below measures the emulation.

    .venv/bin/python benchmarks/cpu_bf16.py [--quick] [--accuracy [--seeds N]] [--profile]
                                            [--step-parts] [--dropout] [--without] [--layers]
                                            [--sample N]

Besides the best runs, each network's per-run ratio (the fp32 and bf16 runs of one repeat, side
by side) is summarised as a geometric mean with its 95% interval over the repeats.

``--sample N`` draws N architectures and batch sizes at random from each CIFAR study's space
(``studies/cifar10-mini.toml`` at 32x32, widths 32-64; ``studies/cifar10-mini-quick.toml`` at
16x16, widths 16-32; a seeded random sampler, so every run times the same ones) and times one
epoch of each in both precisions (best of 3 alternating runs): what a search of that study gains
from bf16, as the geometric mean over the architectures with its 95% interval
(``RESULT cpu_bf16_study <ratio on cifar10-mini>``, ``RESULT cpu_bf16_study_quick <ratio>``).

``--step-parts`` times the two parts of a step that bf16 does not shrink on the typical network
(the optimizer step and dropout's random mask), with the alternatives PyTorch offers.
``--without`` times one training step of the typical network (batch 128) in each precision,
whole and with one kind of layer taken out (BatchNorm, dropout), alternating, so that the
difference is what that kind costs per step in each precision (the profiler's per-op times
move too much from run to run on this VM to say it).
``--layers`` times each kind of layer of the typical network alone (forward + backward, at its
sizes) in each precision: which layers bf16 speeds up, and which it does not.
``--dropout`` trains the typical network with ``torch.nn.Dropout`` and with nin-search's
``Dropout`` (``nin_search/layers.py``: the same expectation, a cheaper random mask), alternating,
and prints the speedup per precision (``RESULT cpu_dropout <bf16 speedup>``); with
``--accuracy`` too, it also trains the typical network on cifar10-mini with each dropout (the
precision ``auto`` picks, same seeds) and prints the paired accuracy difference.

Ends with ``RESULT cpu_bf16 <bf16 img/s / fp32 img/s on the NIN preset>`` (target >= 2 where
bf16 is native) and, with ``--accuracy``, ``RESULT cpu_bf16_accuracy <bf16 - fp32 mean val acc,
in points>`` (target within +-0.5; the interval says whether the seeds can tell).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Callable

import optuna
import torch
from _common import (
    REPO,
    geometric_mean_interval,
    machine_line,
    paired_summary,
    print_result,
    print_table,
    timed,
)

from nin_search import presets
from nin_search.config import StudyConfig
from nin_search.data import DeviceData, load_search_data
from nin_search.devices import (
    Precision,
    configure_cpu_allocator,
    cpu_bf16_flags,
    resolve_precision,
)
from nin_search.layers import Dropout
from nin_search.model import build_model
from nin_search.space import suggest_arch, suggest_hyperparameters
from nin_search.spec import ArchSpec, Hyperparameters, StageSpec
from nin_search.study_files import load_study_config
from nin_search.train import TrainSettings, train

PRECISIONS = ("fp32", "bf16")
HPARAMS = Hyperparameters(optimizer="sgd", learning_rate=0.05, weight_decay=5e-4, batch_size=128)
# The cifar10-mini-quick study's typical trial: widths 16-32, one 1x1 layer where MLP conv.
TYPICAL = ArchSpec(
    stages=(
        StageSpec("mlp", kernel_size=3, width=32, mlp_widths=(32,), pool="max"),
        StageSpec("plain", kernel_size=5, width=32, pool="avg"),
        StageSpec("mlp", kernel_size=3, width=16, mlp_widths=(16,)),
    ),
    head="nin",
    dropout=0.1,
)


def synthetic(count: int, size: int, seed: int) -> DeviceData:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, 3, size, size, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return DeviceData(images.contiguous(memory_format=torch.channels_last), labels)


# The studies whose spaces --sample draws from, largest images first.
SAMPLED_STUDIES = ("cifar10-mini", "cifar10-mini-quick")


def study_config(study: str) -> StudyConfig:
    """``studies/<study>.toml`` of this checkout. Reading it needs ../shared/data/cifar10-mini
    beside the checkout, as every load of a shipped CIFAR study does (``load_study_config``
    refuses it in one line where the images are not)."""
    return load_study_config(REPO / "studies" / f"{study}.toml")


def speed(
    spec: ArchSpec, size: int, images: int, repeats: int, hparams: Hyperparameters = HPARAMS
) -> dict[str, list[float]]:
    """Seconds per run of one epoch over ``images`` images, per precision (alternating)."""
    train_split, val_split = synthetic(images, size, 0), synthetic(128, size, 1)
    torch.manual_seed(0)
    initial = build_model(spec, in_channels=3, num_classes=10).state_dict()

    def run(precision: str, split: DeviceData) -> float:
        model = build_model(spec, in_channels=3, num_classes=10)
        model.load_state_dict(initial)
        settings = TrainSettings(hparams, epochs=1, seed=0, precision=precision)
        seconds, _ = timed(lambda: train(model, split, val_split, settings))
        return seconds

    for precision in PRECISIONS:  # warm-up: oneDNN primitives for both formats
        run(precision, DeviceData(train_split.images[:256], train_split.labels[:256]))
    seconds: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
    for repeat in range(repeats):
        order = PRECISIONS if repeat % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            seconds[precision].append(run(precision, train_split))
    return seconds


def describe(spec: ArchSpec) -> str:
    """``mlp5-64(48) plain3-32 ...``: each stage's kind, kernel, width and 1x1 widths."""
    return " ".join(
        f"{stage.kind}{stage.kernel_size}-{stage.width}"
        + (f"({','.join(map(str, stage.mlp_widths))})" if stage.mlp_widths else "")
        for stage in spec.stages
    )


def drawn(study: str, count: int) -> list[tuple[ArchSpec, int]]:
    """``count`` (architecture, batch size) drawn at random from ``studies/<study>.toml``'s
    space, by a random sampler with a fixed seed: the same ones on every run."""
    config = study_config(study)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    found = []
    for _ in range(count):
        trial = draws.ask()
        spec = suggest_arch(trial, config.space)
        found.append((spec, suggest_hyperparameters(trial, config.train).batch_size))
        draws.tell(trial, 0.0)
    return found


def sampled_speedups(study: str, count: int, images: int) -> list[tuple[str, int, float, float]]:
    """(architecture, batch size, fp32 img/s, bf16 / fp32) of the first ``count`` architectures
    :func:`drawn` from ``study``'s space, each timed for one epoch of ``images`` (x 32 / the
    study's image size) images of the study's size (best of 3 alternating runs per precision)."""
    size = study_config(study).data.image_size
    images = images * 32 // size  # more of the smaller images, as for the typical network
    found = []
    for spec, batch_size in drawn(study, count):
        hparams = dataclasses.replace(HPARAMS, batch_size=batch_size)
        seconds = speed(spec, size, images, 3, hparams)
        best = {precision: min(times) for precision, times in seconds.items()}
        found.append(
            (describe(spec), batch_size, images / best["fp32"], best["fp32"] / best["bf16"])
        )
    return found


def print_sampled(count: int, images: int) -> None:
    """--sample: the bf16 speedup over architectures drawn from each CIFAR study's space."""
    for study in SAMPLED_STUDIES:
        found = sampled_speedups(study, count, images)
        size = study_config(study).data.image_size
        print_table(
            f"studies/{study}.toml ({size}x{size}): {count} architectures drawn at random, "
            f"one epoch of {images * 32 // size} images each, best of 3 alternating runs",
            ["architecture (kind kernel-width(1x1 widths))", "batch", "fp32 img/s", "bf16 / fp32"],
            [(arch, batch, f"{rate:,.0f}", f"{ratio:.2f}") for arch, batch, rate, ratio in found],
        )
        mean, shown = geometric_mean_interval([ratio for *_, ratio in found], "architectures")
        print(f"studies/{study}.toml, bf16 / fp32 over its space: {shown}")
        print_result("cpu_bf16_study" + ("_quick" if study.endswith("quick") else ""), mean)


def typical_with(
    dropout: type[torch.nn.Dropout], *, seed: int, spec: ArchSpec = TYPICAL
) -> torch.nn.Module:
    """``spec``'s network (the typical one by default), seeded, with each dropout layer made a
    ``dropout`` of its rate (a dropout layer draws no random numbers when built, so the weights
    are the same)."""
    torch.manual_seed(seed)
    model = build_model(spec, in_channels=3, num_classes=10)
    for stage in model.stages:
        if hasattr(stage, "drop"):
            stage.drop = dropout(stage.drop.p)
    return model


def accuracy_network(study: str) -> ArchSpec:
    """The network ``--accuracy`` trains for ``study``: the typical one of the quick study, the
    first architecture ``--sample`` draws for the others."""
    return TYPICAL if study == "cifar10-mini-quick" else drawn(study, 1)[0][0]


def accuracy(
    seeds: int,
    sides: dict[str, tuple[str, type[torch.nn.Dropout]]] | None = None,
    *,
    study: str = "cifar10-mini-quick",
) -> dict[str, list[float]]:
    """Validation accuracy of :func:`accuracy_network`'s network trained on cifar10-mini as
    ``studies/<study>.toml`` does (image size, augmentation, epochs), per seed and side.

    ``sides`` maps a name to (precision, dropout class); by default fp32 and bf16 with
    nin-search's ``Dropout``."""
    sides = sides or {precision: (precision, Dropout) for precision in PRECISIONS}
    config = study_config(study)
    spec = accuracy_network(study)
    data = load_search_data(config.data, device="cpu")  # its root: ../shared/data/cifar10-mini
    found: dict[str, list[float]] = {name: [] for name in sides}
    for seed in range(seeds):
        for name, (precision, dropout) in sides.items():
            model = typical_with(dropout, seed=seed, spec=spec)
            settings = TrainSettings(
                HPARAMS,
                epochs=config.train.epochs,
                seed=seed,
                augment=data.augment,
                precision=precision,
            )
            result = train(model, data.train, data.val, settings)
            found[name].append(result.final_accuracy)
    return found


def profile(name: str, spec: ArchSpec, size: int, images: int) -> None:
    """torch.profiler's most expensive ops in one epoch, per precision (after a warm-up)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    train_split, val_split = synthetic(images, size, 0), synthetic(128, size, 1)
    for precision in PRECISIONS:
        model = build_model(spec, in_channels=3, num_classes=10)
        settings = TrainSettings(HPARAMS, epochs=1, seed=0, precision=precision)
        train(model, train_split, val_split, settings)
        with profiler(activities=[ProfilerActivity.CPU]) as result:
            train(model, train_split, val_split, settings)
        print(f"{name}, {precision}: one epoch of {images} images")
        print(result.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


def best_ms(function: Callable[[], object], repeats: int = 200) -> float:
    """Best wall milliseconds of ``repeats`` calls, after 10 warm-up calls."""
    for _ in range(10):
        function()
    return 1000 * min(timed(function)[0] for _ in range(repeats))


def step_parts() -> None:
    """Milliseconds per optimizer step and per dropout mask, typical network, batch 128."""
    parameters = list(build_model(TYPICAL, in_channels=3, num_classes=10).parameters())
    for parameter in parameters:
        parameter.grad = torch.randn_like(parameter)
    elements = sum(parameter.numel() for parameter in parameters)
    rows = []
    for name, factory in (("SGD", torch.optim.SGD), ("AdamW", torch.optim.AdamW)):
        options = {"lr": 1e-3, "weight_decay": 5e-4} | ({"momentum": 0.9} if name == "SGD" else {})
        times = [
            best_ms(factory(parameters, **options, **variant).step)
            for variant in ({"foreach": False}, {"foreach": True}, {"fused": True})
        ]
        rows.append((name, *(f"{t:.2f}" for t in times)))
    print_table(
        f"Optimizer step, typical network ({len(parameters)} tensors, {elements:,} elements), ms",
        ["optimizer", "for loop", "foreach (default)", "fused"],
        rows,
    )
    activation = torch.randn(128, 32, 8, 8).contiguous(memory_format=torch.channels_last)
    half = activation.bfloat16()  # converted once, so that the bf16 row times dropout alone
    dropout = torch.nn.Dropout(0.1).train()
    ours = Dropout(0.1).train()
    rows = [
        ("nn.Dropout, fp32", f"{best_ms(lambda: dropout(activation)):.2f}"),
        ("nn.Dropout, bf16", f"{best_ms(lambda: dropout(half)):.2f}"),
        ("rand_like > p (mask only)", f"{best_ms(lambda: torch.rand_like(activation) > 0.1):.2f}"),
        ("nin-search Dropout, fp32", f"{best_ms(lambda: ours(activation)):.2f}"),
        ("nin-search Dropout, bf16", f"{best_ms(lambda: ours(half)):.2f}"),
    ]
    print_table("Dropout on one 128x32x8x8 activation, ms", ["variant", "ms"], rows)


def without_parts(repeats: int) -> None:
    """Milliseconds per training step of the typical network, whole and without each kind of
    layer, per precision (best of ``repeats`` alternating rounds of 30 steps)."""
    images = torch.randn(128, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (128,))
    removed = {"whole": None, "no BatchNorm": torch.nn.BatchNorm2d, "no dropout": torch.nn.Dropout}

    def stepper(precision: str, kind: type[torch.nn.Module] | None) -> Callable[[], None]:
        torch.manual_seed(0)
        model = build_model(TYPICAL, in_channels=3, num_classes=10)
        model = model.to(memory_format=torch.channels_last)
        for module in list(model.modules()):
            for name, child in list(module.named_children()):
                if kind is not None and isinstance(child, kind):
                    setattr(module, name, torch.nn.Identity())
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        criterion = torch.nn.CrossEntropyLoss()
        context = resolve_precision(precision, torch.device("cpu"))

        def step() -> None:
            with context.autocast():
                loss = criterion(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    steps = {(p, name): stepper(p, kind) for p in PRECISIONS for name, kind in removed.items()}
    for step in steps.values():  # warm-up
        for _ in range(10):
            step()
    best = dict.fromkeys(steps, float("inf"))
    keys = list(steps)
    for repeat in range(repeats):
        for key in keys if repeat % 2 == 0 else keys[::-1]:
            seconds, _ = timed(lambda step=steps[key]: [step() for _ in range(30)])
            best[key] = min(best[key], 1000 * seconds / 30)
    rows = []
    for name in removed:
        cost = {p: best[(p, "whole")] - best[(p, name)] for p in PRECISIONS}
        rows.append(
            (
                name,
                *(f"{best[(p, name)]:.2f}" for p in PRECISIONS),
                *("" if name == "whole" else f"{cost[p]:.2f}" for p in PRECISIONS),
                f"{best[('fp32', name)] / best[('bf16', name)]:.2f}",
            )
        )
    print_table(
        f"Typical network, one training step (batch 128), ms: best of {repeats} rounds",
        ["network", "fp32", "bf16", "its cost fp32", "its cost bf16", "bf16 speedup"],
        rows,
    )


def layer_costs(repeats: int) -> None:
    """Microseconds of forward + backward of each kind of layer of the typical network alone, at
    its largest size there (batch 128, channels-last), per precision: a bf16 input and autocast
    around the layer, as in training; the gradients of the input (not of the images) and of
    the layer's parameters. Best of ``repeats`` alternating blocks of 50 calls."""
    big, small = (128, 32, 16, 16), (128, 32, 8, 8)
    layers: dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...]]] = {
        # the first conv: its input is the images, so no input gradient (as in training)
        "conv 3x3, 3 -> 32, 16x16 (first)": (
            lambda: torch.nn.Conv2d(3, 32, 3, padding=1),
            (128, 3, 16, 16),
        ),
        "conv 1x1, 32 -> 32, 16x16": (lambda: torch.nn.Conv2d(32, 32, 1), big),
        "conv 5x5, 32 -> 32, 8x8": (lambda: torch.nn.Conv2d(32, 32, 5, padding=2), small),
        "BatchNorm, 32 ch, 16x16": (lambda: torch.nn.BatchNorm2d(32), big),
        "ReLU (in place), 32 ch, 16x16": (lambda: torch.nn.ReLU(inplace=True), big),
        "max pool 3x3/2, 32 ch, 16x16": (lambda: torch.nn.MaxPool2d(3, 2, padding=1), big),
        "avg pool 3x3/2, 32 ch, 8x8": (
            lambda: torch.nn.AvgPool2d(3, 2, padding=1, count_include_pad=False),
            small,
        ),
        "nin-search Dropout 0.1, 32 ch, 8x8": (lambda: Dropout(0.1), small),
    }

    def caller(
        precision: str, make: Callable[[], torch.nn.Module], shape: tuple[int, ...]
    ) -> Callable[[], float]:
        layer = make().to(memory_format=torch.channels_last).train()
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        base = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last)
        first = shape[1] == 3  # the images: no gradient for them
        base.requires_grad_(not first)
        context = resolve_precision(precision, torch.device("cpu"))
        with context.autocast():
            grad = torch.randn_like(layer(base.clone()))
        wrt = list(layer.parameters())

        def block() -> float:
            total = 0.0
            for _ in range(50):
                inputs = base.clone()  # a fresh non-leaf input, so an in-place layer can run
                wanted = wrt if first else [inputs, *wrt]
                seconds, _ = timed(
                    lambda inputs=inputs, wanted=wanted: torch.autograd.grad(
                        _forward(layer, inputs, context), wanted, grad
                    )
                )
                total += seconds
            return 1e6 * total / 50

        return block

    blocks = {(name, p): caller(p, *layers[name]) for name in layers for p in PRECISIONS}
    best = dict.fromkeys(blocks, float("inf"))
    keys = list(blocks)
    for repeat in range(repeats + 1):  # the first round warms up
        for key in keys if repeat % 2 == 0 else keys[::-1]:
            microseconds = blocks[key]()
            if repeat:
                best[key] = min(best[key], microseconds)
    rows = [
        (
            name,
            f"{best[(name, 'fp32')]:.0f}",
            f"{best[(name, 'bf16')]:.0f}",
            f"{best[(name, 'fp32')] / best[(name, 'bf16')]:.2f}",
        )
        for name in layers
    ]
    print_table(
        f"Typical network's layers alone, forward + backward, microseconds: best of {repeats}",
        ["layer (batch 128, channels-last)", "fp32", "bf16", "bf16 speedup"],
        rows,
    )


def _forward(layer: torch.nn.Module, inputs: torch.Tensor, context: Precision) -> torch.Tensor:
    with context.autocast():
        return layer(inputs)


def dropout_speedup(size: int, images: int, repeats: int) -> dict[str, list[float]]:
    """Per precision, ``nn.Dropout`` seconds / nin-search ``Dropout`` seconds for one epoch of
    the typical network, per repeat (the two runs of a repeat back to back, order alternating)."""
    train_split, val_split = synthetic(images, size, 0), synthetic(128, size, 1)

    def run(dropout: type[torch.nn.Dropout], precision: str, split: DeviceData) -> float:
        model = typical_with(dropout, seed=0)
        settings = TrainSettings(HPARAMS, epochs=1, seed=0, precision=precision)
        return timed(lambda: train(model, split, val_split, settings))[0]

    warm_up = DeviceData(train_split.images[:256], train_split.labels[:256])
    sides = (torch.nn.Dropout, Dropout)
    speedups: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
    for precision in PRECISIONS:
        for side in sides:
            run(side, precision, warm_up)
        for repeat in range(repeats):
            order = sides if repeat % 2 == 0 else sides[::-1]
            seconds = {side: run(side, precision, train_split) for side in order}
            speedups[precision].append(seconds[torch.nn.Dropout] / seconds[Dropout])
    return speedups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and runs (~1 min)")
    parser.add_argument("--accuracy", action="store_true", help="also train on cifar10-mini")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for --accuracy (default 3)")
    parser.add_argument(
        "--profile", action="store_true", help="also torch.profiler's top ops, both networks"
    )
    parser.add_argument(
        "--step-parts", action="store_true", help="also optimizer step and dropout, in ms"
    )
    parser.add_argument(
        "--dropout", action="store_true", help="also nn.Dropout vs nin-search's Dropout, epochs"
    )
    parser.add_argument(
        "--without", action="store_true", help="also ms per step without BatchNorm / dropout"
    )
    parser.add_argument(
        "--layers", action="store_true", help="also each kind of layer alone, microseconds"
    )
    parser.add_argument(
        "--study",
        choices=SAMPLED_STUDIES,
        default="cifar10-mini-quick",
        help="--accuracy trains as this study does: the quick study's typical network (default)"
        " or the first architecture --sample draws from cifar10-mini's space, 32x32",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="also N architectures drawn from each CIFAR study's space, one epoch each",
    )
    args = parser.parse_args()
    if args.sample < 0:
        parser.error(f"--sample must be 0 or more architectures, but got {args.sample}")
    configure_cpu_allocator()
    flags = cpu_bf16_flags()
    native = bool(flags)
    auto = resolve_precision("auto", torch.device("cpu")).name
    print(machine_line())
    kind = f"yes ({', '.join(sorted(flags))})" if native else "no"
    print(f"native bf16: {kind}; precision = 'auto' trains in {auto} here")
    images, repeats = (512, 3) if args.quick else (2048, 5)
    networks = {
        "NIN preset, 32x32": (presets.nin_cifar10(), 32, images // 2),
        "cifar10-mini typical, 16x16": (TYPICAL, 16, images * 2),
    }
    rows, ratios, paired = [], {}, {}
    for name, (spec, size, count) in networks.items():
        seconds = speed(spec, size, count, repeats)
        rate = {precision: count / min(times) for precision, times in seconds.items()}
        ratios[name] = rate["bf16"] / rate["fp32"]
        per_run = [f / b for f, b in zip(seconds["fp32"], seconds["bf16"], strict=True)]
        paired[name] = geometric_mean_interval(per_run, "runs")[1]
        rows.append(
            (name, f"{rate['fp32']:,.0f}", f"{rate['bf16']:,.0f}", f"{ratios[name]:.2f}", count)
        )
    print_table(
        f"Training img/s on the CPU (best of {repeats} alternating runs, batch 128, SGD)",
        ["network", "fp32 img/s", "bf16 img/s", "bf16 / fp32", "images per run"],
        rows,
    )
    for name, shown in paired.items():
        print(f"{name}, bf16 / fp32 run by run: {shown}")
    if not native:
        print("bf16 is emulated on this CPU: the ratio above is why 'auto' keeps float32 here")
    print_result("cpu_bf16", ratios["NIN preset, 32x32"])
    if args.profile:
        for name, (spec, size, count) in networks.items():
            profile(name, spec, size, count)
    if args.step_parts:
        step_parts()
    if args.without:
        without_parts(repeats + 4)
    if args.layers:
        layer_costs(repeats + 4)
    if args.sample:
        print_sampled(args.sample, images)
    if args.dropout:
        speedups = dropout_speedup(16, images * 2, repeats + 1)
        for precision, values in speedups.items():
            shown = geometric_mean_interval(values, "runs")[1]
            print(f"typical network, {precision}: nin-search Dropout vs nn.Dropout, {shown}")
        print_result("cpu_dropout", geometric_mean_interval(speedups["bf16"])[0])
        if args.accuracy:
            sides = {"nn.Dropout": (auto, torch.nn.Dropout), "nin-search Dropout": (auto, Dropout)}
            found = accuracy(args.seeds, sides)
            gaps = [100 * (ours - theirs) for theirs, ours in zip(*found.values(), strict=True)]
            print(
                f"cifar10-mini, typical network, {auto}, 4 epochs: nin-search Dropout "
                f"- nn.Dropout, paired by seed: {' '.join(f'{d:+.2f}' for d in gaps)} points; "
                f"mean {paired_summary(gaps, 'seeds')}"
            )
    if args.accuracy:
        found = accuracy(args.seeds, study=args.study)
        means = {precision: statistics.mean(values) for precision, values in found.items()}
        config = study_config(args.study)
        size, network = config.data.image_size, describe(accuracy_network(args.study))
        print_table(
            f"cifar10-mini {size}x{size} as studies/{args.study}.toml trains it "
            f"({config.train.epochs} epochs), {network}: validation accuracy",
            ["precision", "per seed", "mean"],
            [(p, " ".join(f"{v:.4f}" for v in found[p]), f"{means[p]:.4f}") for p in PRECISIONS],
        )
        paired = [100 * (b - f) for b, f in zip(found["bf16"], found["fp32"], strict=True)]
        print(
            f"bf16 - fp32, paired by seed: {' '.join(f'{d:+.2f}' for d in paired)} points; "
            f"mean {paired_summary(paired, 'seeds')}"
        )
        print_result("cpu_bf16_accuracy", statistics.mean(paired))


if __name__ == "__main__":
    main()
