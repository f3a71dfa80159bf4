"""Benchmark: the same trials trained by nin-search and by the plain-Optuna script, one by one.

``search_images.py`` races whole searches; this one takes the searches apart. It draws trials at
random from the ``studies/cifar10-mini-quick.toml`` space (Optuna's ``RandomSampler``, seeded)
and trains each one, with the same seed, three ways:

* ``nin-search``: ``build_model`` + ``train()`` on nin-search's split, as a trial of ``nin-search
  optimize`` trains it (``precision = "auto"``: bf16 where the CPU has it);
* ``kaiming``: the same with the initialisation nin-search used before (Kaiming-normal fan-out
  convs, N(0, 0.01) classifier, torchvision's ResNet habit) and float32 like the old code,
  so that the init change is measured on its own against the row ``nin-search fp32``;
* ``plain optuna``: the objective of ``plain_optuna_imagefolder.py`` replayed through
  ``optuna.trial.FixedTrial`` (ImageFolder + DataLoader, no pruning).

Per trial: validation accuracy and seconds. Summary: the mean paired difference in accuracy to
the plain script, with its 95% t-interval and n, and the ratio of seconds per trial. Both sides
validate on the same 2,000 images (checked at the start), so the paired differences carry no
split noise; one accuracy still carries about +-1.1 points of binomial noise.

    .venv/bin/python benchmarks/same_trials.py [--quick] [--trials N] [--seed S]

Ends with ``RESULT same_trials_speed <plain seconds / nin-search seconds per trial>`` and ``RESULT
same_trials_accuracy <mean nin-search - plain accuracy, points>``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import plain_optuna_imagefolder as plain
import torch
from _common import (
    CIFAR10_MINI,
    REPO,
    machine_line,
    paired_summary,
    print_result,
    print_table,
    same_validation_images,
)
from torch import nn

from nin_search.data import load_search_data
from nin_search.model import build_model
from nin_search.space import suggest_arch, suggest_hyperparameters
from nin_search.study_files import load_study_config
from nin_search.train import TrainSettings, train

SIDES = ("nin-search", "nin-search fp32", "kaiming fp32", "plain optuna")


def kaiming_init(model: nn.Module) -> None:
    """nin-search's initialisation before 2026-12-02 (torchvision ResNet's)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)


def plain_params(params: dict[str, object]) -> dict[str, object]:
    """nin-search's parameter names as the plain script spells them."""
    renamed = {}
    for name, value in params.items():
        name = name.replace("_kernel_size", "_kernel")
        for layer in (1, 2):
            name = name.replace(f"_mlp{layer}_width", f"_mlp_width{layer - 1}")
        renamed[name] = value
    return renamed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials")
    parser.add_argument("--trials", type=int, default=None, help="trials drawn (default 12)")
    parser.add_argument("--seed", type=int, default=2, help="RandomSampler seed (default 2)")
    args = parser.parse_args()
    trials = args.trials or (4 if args.quick else 12)
    print(machine_line())
    with tempfile.TemporaryDirectory() as folder:
        text = (REPO / "studies" / "cifar10-mini-quick.toml").read_text()
        path = Path(folder) / "study.toml"
        path.write_text(text.replace('"../../shared/data/cifar10-mini"', f'"{CIFAR10_MINI}"'))
        config = load_study_config(path)
    data = load_search_data(config.data, device="cpu")
    plain_data = plain.make_datasets(str(CIFAR10_MINI))
    paths = [plain_data[1].dataset.samples[index][0] for index in plain_data[1].indices]
    print(f"validation images: the same {same_validation_images(paths, config.data)} on both sides")
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    found: dict[str, list[tuple[float, float]]] = {side: [] for side in SIDES}
    rows = []
    for number in range(trials):
        trial = sampler.ask()
        arch = suggest_arch(trial, config.space)
        hparams = suggest_hyperparameters(trial, config.train)
        sampler.tell(trial, 0.0)
        for side in SIDES:
            torch.manual_seed(number)
            started = time.perf_counter()
            if side == "plain optuna":
                fixed = optuna.trial.FixedTrial(plain_params(trial.params))
                accuracy = plain.objective(fixed, plain_data, workers=2)
            else:
                model = build_model(arch, in_channels=3, num_classes=10)
                if side.startswith("kaiming"):
                    kaiming_init(model)
                settings = TrainSettings(
                    hparams,
                    epochs=config.train.epochs,
                    seed=number,
                    augment=data.augment,
                    precision="fp32" if side.endswith("fp32") else "auto",
                )
                accuracy = train(model, data.train, data.val, settings).final_accuracy
            found[side].append((accuracy, time.perf_counter() - started))
        rows.append(
            (
                number,
                arch.summary(),
                f"{hparams.optimizer} lr {hparams.learning_rate:.3g}",
                *(f"{found[side][-1][0]:.4f} ({found[side][-1][1]:.1f} s)" for side in SIDES),
            )
        )
    print_table(
        f"cifar10-mini-quick space: {trials} random trials, accuracy (seconds)",
        ("#", "architecture", "training", *SIDES),
        rows,
    )
    reference = [accuracy for accuracy, _ in found["plain optuna"]]
    for side in SIDES[:-1]:
        paired = [100 * (a - b) for (a, _), b in zip(found[side], reference, strict=True)]
        seconds = statistics.mean(s for _, s in found[side])
        print(
            f"{side} - plain optuna: {paired_summary(paired, 'trials')}; {seconds:.1f} s per trial"
        )
    init = [
        100 * (a - b)
        for (a, _), (b, _) in zip(found["nin-search fp32"], found["kaiming fp32"], strict=True)
    ]
    print(f"default init - kaiming init (both fp32): {paired_summary(init, 'trials')}")
    plain_seconds = statistics.mean(s for _, s in found["plain optuna"])
    nin_seconds = statistics.mean(s for _, s in found["nin-search"])
    print_result("same_trials_speed", plain_seconds / nin_seconds)
    nin = [accuracy for accuracy, _ in found["nin-search"]]
    print_result(
        "same_trials_accuracy",
        100 * statistics.mean(a - b for a, b in zip(nin, reference, strict=True)),
    )


if __name__ == "__main__":
    main()
