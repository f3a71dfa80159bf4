"""How often do the answer's intervals exclude 0 when MLP conv changes nothing?

Null simulations at the sizes a search gives: n plain and n MLP random trials, parameter counts
log-uniform over 5k..200k, accuracies that do not depend on the kind. A 95% interval should
exclude 0 in at most 5% of them. Four kinds of accuracies: normal, normal with the MLP nets twice
as spread, a third of all nets diverged to chance (10 points) with the rest at 70 ± 5, and a
confound: MLP nets 1.8x larger, with accuracy rising 8 points per tenfold params for both kinds.
Side by side on the same draws:

- nin-search's design-space interval (``analysis.normalised_difference``: Welch's t over the
  complexity bins, the smaller kind's degrees of freedom);
- its size-adjusted interval (``analysis.size_adjusted_difference``: least squares on kind and
  log params, HC3 errors, the smaller kind's degrees of freedom);
- the bootstrap interval the binned one replaced (``scipy.stats.bootstrap``, BCa, resampling
  each kind, bins fixed), on the same binned difference;
- the consensus across 2, 3 and 5 studies of a 3-seed ablation each (``analysis._consensus``
  pooling: random effects with a t quantile) against the same pooling with a normal quantile.

Prints a table of false-detection rates and ``RESULT interval_coverage <worst coverage of
nin-search's intervals>``, and, for what the caution costs, how often nin-search's interval
(binned and size-adjusted) detects a true +5-point effect. ``--quick``: 200 draws a cell
instead of 1000.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import scipy.stats
from statsmodels.stats.meta_analysis import combine_effects

from nin_search.analysis import normalised_difference, size_adjusted_difference
from nin_search.analysis._stats import complexity_bins, number_of_bins

SIZES = [(3, 4), (5, 5), (6, 14), (14, 6), (12, 12), (20, 20)]
SHAPES = ("normal", "MLP spread x2", "a third diverged", "MLP nets 1.8x larger")
CONFOUND_SIZE = np.log(1.8)  # "MLP nets 1.8x larger": log params shifted by this for MLP nets
CONFOUND_SLOPE = 8.0  # ... and accuracy rises 8 points per tenfold params, for both kinds
POINT = 0.347  # one of 288 validation images, in points: ablation differences come in these


def draw_params(generator: np.random.Generator, shape: str, is_mlp: np.ndarray) -> np.ndarray:
    """Parameter counts log-uniform over 5k..200k (MLP nets larger in the confounded shape)."""
    log_params = generator.uniform(np.log(5e3), np.log(2e5), len(is_mlp))
    if shape == "MLP nets 1.8x larger":
        log_params = log_params + CONFOUND_SIZE * is_mlp
    return np.exp(log_params)


def draw(
    generator: np.random.Generator, shape: str, is_mlp: np.ndarray, params: np.ndarray
) -> np.ndarray:
    size = len(is_mlp)
    if shape == "MLP nets 1.8x larger":  # size, not kind, raises accuracy
        return generator.normal(30.0, 5.0, size) + CONFOUND_SLOPE * np.log10(params)
    if shape == "normal":
        return generator.normal(70.0, 5.0, size)
    if shape == "MLP spread x2":
        return generator.normal(70.0, np.where(is_mlp, 10.0, 5.0))
    diverged = generator.random(size) < 1 / 3
    return np.where(diverged, generator.normal(10.0, 1.0, size), generator.normal(70.0, 5.0, size))


def bootstrap_interval(values, params, is_mlp, seed):
    """The previous method: BCa bootstrap of the binned difference, each kind resampled."""
    bins = complexity_bins(params, number_of_bins(len(values)))
    kept = [label for label in np.unique(bins) if len(set(is_mlp[bins == label])) == 2]
    keep = np.isin(bins, kept)
    bins = np.searchsorted(kept, bins[keep])
    values, is_mlp = values[keep], is_mlp[keep]
    shares = np.bincount(bins) / len(bins)
    plain, mlp = values[~is_mlp], values[is_mlp]
    plain_bins, mlp_bins = bins[~is_mlp], bins[is_mlp]
    labels = np.arange(len(shares))

    def means(sample, sample_bins):
        onehot = sample_bins[..., None] == labels
        counts = onehot.sum(axis=-2)
        sums = (sample[..., None] * onehot).sum(axis=-2)
        return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0), counts

    def statistic(plain_index, mlp_index, axis=-1):
        plain_index = np.moveaxis(plain_index, axis, -1).astype(int)
        mlp_index = np.moveaxis(mlp_index, axis, -1).astype(int)
        plain_means, plain_counts = means(plain[plain_index], plain_bins[plain_index])
        mlp_means, mlp_counts = means(mlp[mlp_index], mlp_bins[mlp_index])
        weights = shares * ((plain_counts > 0) & (mlp_counts > 0))
        total = weights.sum(axis=-1)
        fallback = mlp[mlp_index].mean(axis=-1) - plain[plain_index].mean(axis=-1)
        difference = (weights * (mlp_means - plain_means)).sum(axis=-1)
        return np.divide(difference, total, out=np.asarray(fallback, float), where=total > 0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = scipy.stats.bootstrap(
            (np.arange(len(plain)), np.arange(len(mlp))),
            statistic,
            n_resamples=2000,
            vectorized=True,
            method="BCa",
            batch=200,
            rng=np.random.default_rng(seed),
        )
    return result.confidence_interval


def excludes_zero(interval) -> bool:
    return interval is not None and (interval[0] > 0 or interval[1] < 0)


def design_space_rates(draws: int) -> tuple[list[str], list[float]]:
    rows, coverages = [], []
    for shape in SHAPES:
        for n_plain, n_mlp in SIZES:
            generator = np.random.default_rng(n_plain * 100 + n_mlp)
            is_mlp = np.array([False] * n_plain + [True] * n_mlp)
            welch = adjusted = boot = 0
            for index in range(draws):
                params = draw_params(generator, shape, is_mlp)
                values = draw(generator, shape, is_mlp, params)
                welch += excludes_zero(normalised_difference(values, params, is_mlp).interval)
                fit = size_adjusted_difference(values, params, is_mlp)
                adjusted += fit is not None and excludes_zero(fit.interval)
                boot += excludes_zero(bootstrap_interval(values, params, is_mlp, index))
            coverages += [1 - welch / draws, 1 - adjusted / draws]
            rows.append(
                f"| {shape} | {n_plain} / {n_mlp} | {welch / draws:.1%} | "
                f"{adjusted / draws:.1%} | {boot / draws:.1%} |"
            )
    return rows, coverages


def power(draws: int, effect: float) -> list[str]:
    """How often nin-search's interval detects a true effect of ``effect`` points (normal
    accuracies, sd 5): what the conservative degrees of freedom cost."""
    rows = []
    for n_plain, n_mlp in SIZES:
        generator = np.random.default_rng(n_plain * 100 + n_mlp + 1)
        is_mlp = np.array([False] * n_plain + [True] * n_mlp)
        detected = detected_adjusted = 0
        for _ in range(draws):
            params = np.exp(generator.uniform(np.log(5e3), np.log(2e5), len(is_mlp)))
            values = generator.normal(70.0, 5.0, len(is_mlp)) + effect * is_mlp
            interval = normalised_difference(values, params, is_mlp).interval
            detected += interval is not None and interval[0] > 0
            fit = size_adjusted_difference(values, params, is_mlp)
            detected_adjusted += bool(fit and fit.interval and fit.interval[0] > 0)
        rows.append(
            f"| {n_plain} / {n_mlp} | {detected / draws:.1%} | {detected_adjusted / draws:.1%} |"
        )
    return rows


def consensus_rates(draws: int) -> tuple[list[str], list[float]]:
    rows, coverages = [], []
    generator = np.random.default_rng(7)
    for studies in (2, 3, 5):
        with_t = with_normal = 0
        for _ in range(draws):
            effects, variances = [], []
            for _ in range(studies):
                sd = 0.0
                while sd == 0:  # a study whose 3 seeds tie has no interval: it is left out
                    seeds = np.round(generator.normal(0.0, 0.5, 3) / POINT) * POINT
                    sd = seeds.std(ddof=1)
                effects.append(seeds.mean())
                variances.append(sd**2 / 3)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = combine_effects(np.array(effects), np.array(variances), method_re="pm")
                with_t += excludes_zero(result.conf_int(alpha=0.05, use_t=True)[1])
                with_normal += excludes_zero(result.conf_int(alpha=0.05, use_t=False)[1])
        coverages.append(1 - with_t / draws)
        rows.append(
            f"| {studies} studies x 3 seeds | {with_t / draws:.1%} | {with_normal / draws:.1%} |"
        )
    return rows, coverages


def print_table(title: str, header: list[str], rows: list[str]) -> None:
    """A markdown table under its title; the first column left-aligned, the others right."""
    print(f"\n{title}")
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 draws a cell, not 1000")
    arguments = parser.parse_args()
    draws = 200 if arguments.quick else 1000
    start = time.perf_counter()
    rows, coverages = design_space_rates(draws)
    print_table(
        f"Design space, no effect ({draws} draws a row): share of 95% intervals excluding 0",
        [
            "accuracies",
            "plain / mlp n",
            "nin-search (Welch t over bins)",
            "size-adjusted (OLS, HC3 t)",
            "bootstrap (BCa)",
        ],
        rows,
    )
    print_table(
        f"Power: a true +5-point effect (1 sd), normal accuracies ({draws} draws a row)",
        ["plain / mlp n", "nin-search detects it (bins)", "size-adjusted detects it"],
        power(draws, 5.0),
    )
    consensus, consensus_coverages = consensus_rates(draws)
    print_table(
        f"Consensus, no effect ({draws} draws a row): share of 95% intervals excluding 0",
        ["pooled", "nin-search (t, studies - 1 df)", "normal quantile"],
        consensus,
    )
    print(f"\n{time.perf_counter() - start:.0f} s")
    print(f"RESULT interval_coverage {min(coverages + consensus_coverages):.3f}")


if __name__ == "__main__":
    main()
