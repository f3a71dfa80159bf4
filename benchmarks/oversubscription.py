"""Two trainings at once on one CPU: what sharing the cores costs, and what avoids it.

A user runs two studies (or a study and a test suite) on the same small machine. Each
PyTorch process starts one OpenMP thread per core it may use; two of them put twice as many
threads as cores on the machine, and OpenMP threads that wait for each other at every layer
then wait for a core too. This benchmark trains the same network in child processes, side by
side in one run:

* alone, with every core (the reference);
* two at once, each with every core (what two default runs do);
* two at once, each pinned to its own half of the cores (``taskset -c 0 nin-search ...`` and
  ``taskset -c 1 ...``: nin-search sizes its threads by the CPU affinity it is given);
* two at once, one thread each but not pinned (what each worker of nin-search's default,
  one worker per core, runs with);
* two at once, each with every core and ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep instead of
  spinning while they wait: the usual advice), and that policy alone.

The step is one training step of a typical cifar10-mini-quick network (16x16, widths 32-64,
batch 128, bf16 autocast where the CPU multiplies bf16 natively, else float32), repeated for a
fixed time after a warm-up. Each child is a fresh process (OpenMP reads its environment once).

    .venv/bin/python benchmarks/oversubscription.py [--quick] [--seconds S]

Ends with ``RESULT oversubscription <ratio>``: images per second of the two pinned runs
together over the two unpinned ones together (> 1: pinning pays).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = "--child"
THREADS_VARIABLE = "OVERSUBSCRIPTION_WORKERS"  # the child shares its cores as N workers would


def _child(seconds: float, cores: list[int] | None) -> None:
    """Trains for ``seconds`` on ``cores`` (None: every core this process may use); prints
    images per second as JSON."""
    if cores is not None:
        os.sched_setaffinity(0, cores)
    import torch
    from _common import CIFAR_ARCH

    from nin_search.devices import configure_cpu_threads, cpu_has_native_bf16
    from nin_search.model import build_model

    # As a one-worker `nin-search optimize`: one thread per usable core (or as its default
    # of one worker per core: one thread).
    configure_cpu_threads(int(os.environ.get(THREADS_VARIABLE, "1")))
    model = build_model(CIFAR_ARCH, in_channels=3, num_classes=10)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(128, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (128,))
    dtype = torch.bfloat16 if cpu_has_native_bf16() else torch.float32

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({"img_s": steps * 128 / elapsed, "threads": torch.get_num_threads()}))


def _run(copies: list[tuple[list[int] | None, dict[str, str]]], seconds: float) -> list[dict]:
    """Starts one child per ``(cores, extra environment)`` at once; their results."""
    children = []
    for cores, extra in copies:
        command = [sys.executable, __file__, CHILD, str(seconds)]
        if cores is not None:
            command.append(",".join(map(str, cores)))
        environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        children.append(
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment | extra)
        )
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"a child failed (exit {child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per run instead of 15")
    parser.add_argument("--seconds", type=float, help="seconds of training per run")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all the setups")
    args = parser.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 15.0)

    from _common import machine_line, print_result, print_table

    from nin_search.devices import usable_cpu_cores

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("needs at least 2 usable cores")
    half = len(cores) // 2
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}
    one_thread = {THREADS_VARIABLE: str(len(cores))}  # as one of one-worker-per-core
    setups = {
        "alone, every core": [(None, {})],
        "alone, every core, OMP_WAIT_POLICY=PASSIVE": [(None, passive)],
        "two at once, every core each": [(None, {}), (None, {})],
        "two at once, each pinned to its half": [(cores[:half], {}), (cores[half:], {})],
        "two at once, one thread each, not pinned": [(None, one_thread)] * 2,
        "two at once, every core each, OMP_WAIT_POLICY=PASSIVE": [(None, passive)] * 2,
    }
    print(machine_line(), f"| usable cores {usable_cpu_cores()} | {seconds:.0f} s per run")
    totals: dict[str, list[float]] = {name: [] for name in setups}
    threads: dict[str, list[int]] = {}
    for _ in range(args.repeats):
        for name, copies in setups.items():
            results = _run(copies, seconds)
            totals[name].append(sum(result["img_s"] for result in results))
            threads[name] = [result["threads"] for result in results]
    reference = max(totals["alone, every core"])
    rows = [
        (
            name,
            len(setups[name]),
            "+".join(map(str, threads[name])),
            " / ".join(f"{value:,.0f}" for value in values),
            f"{max(values) / reference:.2f}",
        )
        for name, values in totals.items()
    ]
    print_table(
        "Images per second of all the runs of a setup together (best of the repeats vs alone)",
        ["setup", "processes", "threads", "img/s per repeat", "vs alone"],
        rows,
    )
    pinned = max(totals["two at once, each pinned to its half"])
    unpinned = max(totals["two at once, every core each"])
    print_result("oversubscription", pinned / unpinned)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        _child(
            float(sys.argv[2]), [int(c) for c in sys.argv[3].split(",")] if sys.argv[3:] else None
        )
    else:
        main()
