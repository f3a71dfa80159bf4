"""Profiles one trial's CPU training loop: wall, user and sys seconds, page faults.

Not a test. Runs ``nin_search.train.train`` on digits or cifar10-mini with a fixed
architecture and reports the process's CPU times (``resource.getrusage``), so that kernel time
(page faults, futex waits) shows next to compute.

    .venv/bin/python benchmarks/profile_loop.py --dataset cifar10-mini --epochs 2
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from _common import CIFAR10_MINI, CIFAR_ARCH

from nin_search.config import AugmentConfig, DataConfig
from nin_search.data import load_search_data
from nin_search.model import build_model
from nin_search.spec import ArchSpec, Hyperparameters, StageSpec
from nin_search.train import TrainSettings, train

DIGITS_ARCH = ArchSpec(
    stages=(
        StageSpec("mlp", kernel_size=3, width=32, mlp_widths=(32,), pool="max"),
        StageSpec("plain", kernel_size=3, width=64),
    ),
    head="nin",
)


def load(dataset: str):
    if dataset == "digits":
        return load_search_data(DataConfig(), device="cpu"), DIGITS_ARCH
    config = DataConfig(
        dataset="imagefolder",
        root=str(CIFAR10_MINI),
        augment=AugmentConfig(crop_padding=4, flip=True),
    )
    return load_search_data(config, device="cpu"), CIFAR_ARCH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "cifar10-mini"], default="cifar10-mini")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = default")
    parser.add_argument("--torch-profile", action="store_true", help="print a profiler table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data, arch = load(args.dataset)
    torch.manual_seed(0)
    model = build_model(arch, in_channels=data.in_channels, num_classes=data.num_classes)
    hparams = Hyperparameters(batch_size=args.batch_size)

    def run():
        settings = TrainSettings(hparams, epochs=args.epochs, seed=0, augment=data.augment)
        return train(model, data.train, data.val, settings)

    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    if args.torch_profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            result = run()
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    else:
        result = run()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    images = len(data.train) * args.epochs
    print(
        f"{args.dataset} threads={torch.get_num_threads()} batch={args.batch_size} "
        f"epochs={args.epochs}: wall {wall:.1f} s, user {after.ru_utime - before.ru_utime:.1f} s, "
        f"sys {after.ru_stime - before.ru_stime:.1f} s, "
        f"minor faults {after.ru_minflt - before.ru_minflt}, "
        f"{images / wall:.0f} img/s, val acc {result.final_accuracy:.3f}"
    )


if __name__ == "__main__":
    main()
