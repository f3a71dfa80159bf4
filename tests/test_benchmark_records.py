"""The race figures benchmarks/RESULTS.md quotes from saved trials are what ``--load`` prints.

``search_images.py --save`` keeps every trial's finish time and accuracy; ``--load`` recomputes
the summary from them without training. These tests rerun that summary on the committed files
and check each quoted figure, so a change to the summary's statistics, or a figure edited by
hand in RESULTS.md, fails here. The figures pooled over every seed run (the saved ones and
12-03's ten, whose trials were not saved) and the same-seed comparison of the two CPUs are
recomputed from the per-seed ratios ``--load`` prints, as RESULTS.md §3c says.
"""

import math
import re
import subprocess
import sys

import pytest

from .conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from _common import geometric_mean_interval

RESULTS = REPO / "benchmarks" / "results"
DAY_1 = "search_images-2026-12-04.json"
DAY_1_MORE = "search_images-2026-12-04-seeds10-19.json"
DAY_2 = "search_images-2026-12-05-seeds20-27.json"
TPE_RANDOM = "search_images-2026-12-05-tpe-random.json"
ZEN5 = [
    "search_images-2026-12-06-zen5-seeds0-2.json",
    "search_images-2026-12-06-zen5-seeds3-5.json",
]
ZEN5_MORE = [
    "search_images-2026-12-06-zen5-seeds6-8.json",
    "search_images-2026-12-06-zen5-seeds9-11.json",
    "search_images-2026-12-06-zen5-seeds12-14.json",
    "search_images-2026-12-06-zen5-seeds15-17.json",
]


def load(files: list[str]) -> str:
    """What ``search_images.py --load`` prints for these saved trial files."""
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/search_images.py",
            "--load",
            *(str(RESULTS / f) for f in files),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def recorded(name: str = "benchmarks/RESULTS.md") -> str:
    """The file's text with its lines rewrapped, so that reflowing it changes nothing here."""
    return " ".join((REPO / name).read_text().split())


@pytest.mark.parametrize(
    ("files", "printed", "quoted"),
    [
        (
            [DAY_2],
            [
                "vs_plain_optuna over seeds: 3.40x, 95% CI 1.82..6.36x (n=8 seeds)",
                "+4.05 points, 95% CI +2.17..+5.93 (n=8 seeds)",
                "RESULT vs_plain_optuna 3.4\n",
            ],
            ["3.40x, 95% CI 1.82..6.36x (n=8 seeds)", "+4.05 points, 95% CI +2.17..+5.93 (n=8)"],
        ),
        (
            [DAY_1, DAY_1_MORE, DAY_2],
            [
                "vs_plain_optuna over seeds: 3.20x, 95% CI 2.45..4.18x (n=28 seeds)",
                "+3.75 points, 95% CI +2.93..+4.56 (n=28 seeds)",
            ],
            ["3.20x, 95% CI 2.45..4.18x (n=28)", "+3.75 points (CI +2.93..+4.56)"],
        ),
        (
            ZEN5,
            [
                "vs_plain_optuna over seeds: 5.80x, 95% CI 2.45..13.73x (n=6 seeds)",
                "+3.92 points, 95% CI +2.26..+5.59 (n=6 seeds)",
            ],
            ["5.80x, 95% CI 2.45..13.73x (n=6 seeds)", "+3.92 points, 95% CI +2.26..+5.59 (n=6)"],
        ),
        (
            [DAY_1, DAY_1_MORE, DAY_2, *ZEN5],
            ["vs_plain_optuna over seeds: 3.55x, 95% CI 2.75..4.60x (n=34 seeds)"],
            ["3.55x, CI 2.75..4.60x"],
        ),
        (
            ZEN5_MORE,
            [
                "vs_plain_optuna over seeds: 2.58x, 95% CI 1.52..4.38x (n=12 seeds)",
                "+3.31 points, 95% CI +2.00..+4.62 (n=12 seeds)",
                "RESULT vs_plain_optuna 2.58\n",
            ],
            ["2.58x, 95% CI 1.52..4.38x (n=12 seeds)", "+3.31 points, 95% CI +2.00..+4.62 (n=12)"],
        ),
        (
            [*ZEN5, *ZEN5_MORE],
            [
                "vs_plain_optuna over seeds: 3.38x, 95% CI 2.17..5.28x (n=18 seeds)",
                "+3.51 points, 95% CI +2.57..+4.46 (n=18 seeds)",
            ],
            ["3.38x, 95% CI 2.17..5.28x (n=18 seeds)", "+3.51 points (CI +2.57..+4.46)"],
        ),
        (
            [DAY_1, DAY_1_MORE, DAY_2, *ZEN5, *ZEN5_MORE],
            [
                "vs_plain_optuna over seeds: 3.27x, 95% CI 2.60..4.11x (n=46 seeds)",
                "+3.66 points, 95% CI +3.06..+4.25 (n=46 seeds)",
            ],
            ["3.27x, 95% CI 2.60..4.11x (n=46)", "+3.66 points (CI +3.06..+4.25)"],
        ),
        (
            [TPE_RANDOM],
            [
                "best val acc, tpe - random: +2.33 points, 95% CI +0.55..+4.12 (n=6 seeds)",
                "s to beat all-plain, random / tpe: 1.04x, 95% CI 0.87..1.25x (n=6 seeds)",
                "RESULT search_images 1.05\n",
            ],
            [
                "TPE +2.33 points, 95% CI +0.55..+4.12 (n=6 seeds)",
                "random ÷ TPE 1.04x, 95% CI 0.87..1.25x (n=6)",
                "`RESULT search_images 1.05`",
            ],
        ),
    ],
    ids=[
        "12-05 seeds 20-27",
        "28 saved seeds pooled",
        "zen 5 seeds 0-5",
        "34 saved seeds pooled",
        "zen 5 seeds 6-17",
        "zen 5 all 18 seeds",
        "46 saved seeds pooled",
        "tpe vs random",
    ],
)
def test_search_images_load_prints_the_figures_results_md_quotes(files, printed, quoted):
    stdout = load(files)
    for line in printed:
        assert line in stdout, f"--load no longer prints {line!r}:\n{stdout}"
    text = recorded()
    for figure in quoted:
        assert figure in text, f"RESULTS.md no longer quotes {figure!r}"


def seed_ratios(files: list[str]) -> list[tuple[int, float]]:
    """(seed, plain s / nin-search s) for each seed run ``--load`` prints."""
    found = re.findall(r"^seed (\d+), .*? ratio ([\d.]+);", load(files), re.MULTILINE)
    return [(int(seed), float(ratio)) for seed, ratio in found]


# 12-03's ten seeds, whose trials were not saved: the ratios RESULTS.md §3c tabulates.
DAY_0_RATIOS = [2.85, 0.52, 2.66, 1.53, 2.51, 2.74, 3.73, 4.39, 2.10, 1.10]


def test_the_pooled_race_figures_follow_from_the_per_seed_ratios():
    intel = seed_ratios([DAY_1, DAY_1_MORE, DAY_2])
    zen5 = seed_ratios([*ZEN5, *ZEN5_MORE])
    assert (len(intel), len(zen5)) == (28, 18)
    every_run = DAY_0_RATIOS + [ratio for _, ratio in intel + zen5]
    pooled = geometric_mean_interval(every_run, "seed runs")[1]
    assert pooled == "3.02x, 95% CI 2.46..3.70x (n=56 seed runs)"
    assert pooled in recorded()
    assert "3.02x as fast (95% CI 2.46..3.70x, n=56 seed runs" in recorded("README.md")
    assert (sum(r > 1 for r in every_run), sum(r >= 3 for r in every_run)) == (54, 29)
    assert "faster on 54 of 56, 3x or more on 29" in recorded()
    # The runs are 28 seeds, most run more than once: each seed counted once, by its runs'
    # geometric mean, in case runs of one seed are not independent.
    by_seed: dict[int, list[float]] = {}
    for seed, ratio in [*enumerate(DAY_0_RATIOS), *intel, *zen5]:
        by_seed.setdefault(seed, []).append(math.log(ratio))
    per_seed = [math.exp(sum(logs) / len(logs)) for logs in by_seed.values()]
    clustered = geometric_mean_interval(per_seed, "seeds")[1]
    assert clustered == "3.07x, 95% CI 2.42..3.91x (n=28 seeds)"
    assert clustered.replace(" (n=28 seeds)", "") in recorded()
    assert "3.07x, CI 2.42..3.91x (n=28 seeds)" in recorded("README.md")
    on_intel = dict(intel)  # seeds 0-27 once each
    same_seed = [ratio / on_intel[seed] for seed, ratio in zen5]
    shown = geometric_mean_interval(same_seed)[1]
    assert shown == "1.11x, 95% CI 0.71..1.72x (n=18 seeds)"
    assert shown in recorded()
