"""Pure numbers: paired t-intervals, seed counts, complexity-normalised group differences.

No optuna here: plain sequences in, NamedTuples out. The complexity normalisation follows
Radosavovic et al. 2019 ("On Network Design Spaces for Visual Recognition", section 3): bins over
log parameter count, each model weighted by (pooled share of its bin) / (count of its group in
that bin), so that plain and MLP models have the same complexity distribution.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.stats

from nin_search.analysis._defaults import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    MAX_BINS,
    MAX_SEEDS,
    TRIALS_PER_BIN,
)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), but got confidence={confidence}.")


def t_interval(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The t-interval of the mean of ``values`` (``None`` for fewer than two values).

    Args:
        values: Paired differences, one per seed.
        confidence: Coverage, in (0, 1).
    """
    _check_confidence(confidence)
    if len(values) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical values: a zero-width interval
        result = scipy.stats.ttest_1samp(np.asarray(values, dtype=float), 0.0)
        low, high = result.confidence_interval(confidence_level=confidence)
    return float(low), float(high)


def half_width_for_seeds(sd: float, seeds: int, confidence: float = CONFIDENCE) -> float:
    """Half-width of the t-interval of a mean of ``seeds`` differences whose sd is ``sd``.

    Args:
        sd: Standard deviation of one paired difference (points).
        seeds: Number of seeds, at least 2.
        confidence: Coverage, in (0, 1).
    """
    _check_confidence(confidence)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2:
        raise ValueError(f"seeds must be an integer >= 2, but got seeds={seeds!r}.")
    if not sd >= 0:
        raise ValueError(f"sd must be >= 0, but got sd={sd}.")
    quantile = scipy.stats.t.ppf((1.0 + confidence) / 2.0, seeds - 1)
    return float(quantile * sd / math.sqrt(seeds))


def seeds_for_half_width(
    sd: float, half_width: float, confidence: float = CONFIDENCE
) -> int | None:
    """The fewest seeds whose t-interval has at most ``half_width`` (``None`` beyond 1000).

    Args:
        sd: Standard deviation of one paired difference (points).
        half_width: The half-width wanted (points), > 0.
        confidence: Coverage, in (0, 1).
    """
    if not half_width > 0:
        raise ValueError(f"half_width must be > 0, but got half_width={half_width}.")
    for seeds in range(2, MAX_SEEDS + 1):
        if half_width_for_seeds(sd, seeds, confidence) <= half_width:
            return seeds
    return None


def number_of_bins(count: int) -> int:
    """Complexity bins for ``count`` pooled models: one per 8, between 1 and 10."""
    return max(1, min(MAX_BINS, count // TRIALS_PER_BIN))


def complexity_bins(params: Sequence[float], n_bins: int) -> np.ndarray:
    """The bin of each model: quantile bins of log parameter count (ties share a bin).

    Args:
        params: Parameter counts (> 0) of the pooled models.
        n_bins: Bins wanted; fewer result when quantiles tie.

    Returns:
        Integer bin indices from 0, in the order of ``params``.
    """
    log_params = np.log(np.asarray(params, dtype=float))
    inner = np.quantile(log_params, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.searchsorted(np.unique(inner), log_params, side="right")


def weighted_edf(values: np.ndarray, weights: np.ndarray) -> tuple[list[float], list[float]]:
    """Sorted values and the cumulative share of weight at each (the weighted EDF)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order]) / np.sum(weights)
    return values[order].tolist(), cumulative.tolist()


def weighted_ks(
    first: np.ndarray, first_weights: np.ndarray, second: np.ndarray, second_weights: np.ndarray
) -> float:
    """The largest vertical distance between the weighted EDFs of two samples."""
    grid = np.union1d(first, second)

    def edf(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        cumulative = np.concatenate([[0.0], np.cumsum(weights[order]) / np.sum(weights)])
        return cumulative[np.searchsorted(values[order], grid, side="right")]

    return float(np.max(np.abs(edf(first, first_weights) - edf(second, second_weights))))


class NormalisedDifference(NamedTuple):
    """MLP minus plain, with both groups reweighted to the pooled complexity distribution.

    ``difference`` and ``interval`` are in the units of the values given (the callers use
    points); ``interval`` is ``None`` when a group has fewer than two models or no bin holds
    both groups. ``plain``/``mlp`` hold the kept models' values and weights (summing to 1).
    """

    difference: float | None
    interval: tuple[float, float] | None
    ks_statistic: float | None
    n_plain: int
    n_mlp: int
    bins_used: int
    bins_dropped: int
    trials_dropped: int
    plain_values: list[float]
    plain_weights: list[float]
    mlp_values: list[float]
    mlp_weights: list[float]


def _binned_difference(
    plain: np.ndarray,
    plain_bins: np.ndarray,
    mlp: np.ndarray,
    mlp_bins: np.ndarray,
    shares: np.ndarray,
) -> np.ndarray:
    """sum_b share_b (mean_mlp_b - mean_plain_b) over the bins both groups fill (last axis).

    A bootstrap resample in which no bin holds both groups (rare: a few models per bin) falls
    back to the plain difference of the resample's means, so that no resample is undefined.
    """
    labels = np.arange(len(shares))

    def bin_means(values: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        onehot = bins[..., None] == labels  # (..., n, bins)
        counts = onehot.sum(axis=-2)
        sums = (values[..., None] * onehot).sum(axis=-2)
        return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0), counts

    plain_means, plain_counts = bin_means(plain, plain_bins)
    mlp_means, mlp_counts = bin_means(mlp, mlp_bins)
    weights = shares * ((plain_counts > 0) & (mlp_counts > 0))
    total = weights.sum(axis=-1)
    differences = (weights * (mlp_means - plain_means)).sum(axis=-1)
    unweighted = mlp.mean(axis=-1) - plain.mean(axis=-1)
    return np.divide(differences, total, out=np.asarray(unweighted, dtype=float), where=total > 0)


def normalised_difference(
    values: Sequence[float],
    params: Sequence[float],
    is_mlp: Sequence[bool],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> NormalisedDifference:
    """Complexity-normalised MLP minus plain difference, bootstrap interval and weighted KS.

    Bins are quantile bins of the pooled log parameter counts (:func:`number_of_bins`); a bin
    where one group is empty is dropped (and counted). The bootstrap (``scipy.stats.bootstrap``,
    BCa, percentile when BCa is undefined) resamples models within each group and keeps the bin
    edges and the pooled shares fixed.

    Args:
        values: One value per model (e.g. accuracy in points).
        params: Parameter counts, > 0.
        is_mlp: Whether each model has an MLP conv (else plain conv) at the stage.
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Bootstrap resamples, >= 1.
        seed: Seed of the bootstrap.
    """
    _check_confidence(confidence)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be an integer >= 1, but got n_resamples={n_resamples}.")
    values_array, params_array, mlp_mask = _checked_models(values, params, is_mlp)
    empty = NormalisedDifference(None, None, None, 0, 0, 0, 0, len(values_array), [], [], [], [])
    if not mlp_mask.any() or mlp_mask.all():
        return empty
    bins = complexity_bins(params_array, number_of_bins(len(values_array)))
    labels = np.unique(bins)
    kept = [label for label in labels if len(set(mlp_mask[bins == label])) == 2]
    if not kept:
        return empty._replace(bins_dropped=len(labels))
    keep = np.isin(bins, kept)
    bins = np.searchsorted(kept, bins[keep])  # renumber the kept bins 0..k-1
    values_array, mlp_mask = values_array[keep], mlp_mask[keep]
    shares = np.bincount(bins) / len(bins)
    plain_counts = np.bincount(bins[~mlp_mask], minlength=len(kept))
    mlp_counts = np.bincount(bins[mlp_mask], minlength=len(kept))
    weights = shares[bins] / np.where(mlp_mask, mlp_counts[bins], plain_counts[bins])
    plain, mlp = values_array[~mlp_mask], values_array[mlp_mask]
    plain_bins, mlp_bins = bins[~mlp_mask], bins[mlp_mask]
    difference = float(_binned_difference(plain, plain_bins, mlp, mlp_bins, shares))
    interval = _binned_difference_interval(
        plain, plain_bins, mlp, mlp_bins, shares,
        confidence=confidence, n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    return NormalisedDifference(
        difference=difference,
        interval=interval,
        ks_statistic=weighted_ks(mlp, weights[mlp_mask], plain, weights[~mlp_mask]),
        n_plain=len(plain),
        n_mlp=len(mlp),
        bins_used=len(kept),
        bins_dropped=len(labels) - len(kept),
        trials_dropped=int((~keep).sum()),
        plain_values=plain.tolist(),
        plain_weights=weights[~mlp_mask].tolist(),
        mlp_values=mlp.tolist(),
        mlp_weights=weights[mlp_mask].tolist(),
    )


def _checked_models(
    values: Sequence[float], params: Sequence[float], is_mlp: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``values``, ``params`` and ``is_mlp`` as arrays, checked: one entry per model, finite
    values, finite params > 0."""
    values_array = np.asarray(values, dtype=float)
    mlp_mask = np.asarray(is_mlp, dtype=bool)
    if not len(values_array) == len(params) == len(mlp_mask):
        raise ValueError(
            f"values, params and is_mlp must have one entry per model, but got lengths "
            f"{len(values_array)}, {len(params)} and {len(mlp_mask)}."
        )
    params_array = np.asarray(params, dtype=float)
    if not (np.all(np.isfinite(params_array)) and np.all(params_array > 0)):
        raise ValueError(f"params must be finite and > 0, but got params={list(params)}.")
    if not np.all(np.isfinite(values_array)):
        raise ValueError(f"values must be finite, but got values={list(values)}.")
    return values_array, params_array, mlp_mask


def _binned_difference_interval(
    plain: np.ndarray,
    plain_bins: np.ndarray,
    mlp: np.ndarray,
    mlp_bins: np.ndarray,
    shares: np.ndarray,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float] | None:
    """Bootstrap interval of :func:`_binned_difference`, resampling models within each group
    (bins and shares fixed); ``None`` below two models a group."""
    if len(plain) < 2 or len(mlp) < 2:
        return None

    def statistic(plain_index: np.ndarray, mlp_index: np.ndarray, axis: int = -1) -> np.ndarray:
        plain_index = np.moveaxis(plain_index, axis, -1).astype(int)
        mlp_index = np.moveaxis(mlp_index, axis, -1).astype(int)
        return _binned_difference(
            plain[plain_index], plain_bins[plain_index], mlp[mlp_index], mlp_bins[mlp_index], shares
        )

    return _bootstrap(
        statistic, len(plain), len(mlp), confidence=confidence, n_resamples=n_resamples, seed=seed
    )


def mean_difference_interval(
    plain: Sequence[float],
    mlp: Sequence[float],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """Bootstrap interval of ``mean(mlp) - mean(plain)``, resampling each group on its own
    (BCa, percentile where BCa is undefined); ``None`` below two values a group.

    Args:
        plain: One group's values.
        mlp: The other group's values.
        confidence: Coverage, in (0, 1).
        n_resamples: Bootstrap resamples.
        seed: Seed of the resampling.
    """
    _check_confidence(confidence)
    plain_values, mlp_values = np.asarray(plain, dtype=float), np.asarray(mlp, dtype=float)
    if len(plain_values) < 2 or len(mlp_values) < 2:
        return None

    def statistic(plain_index: np.ndarray, mlp_index: np.ndarray, axis: int = -1) -> np.ndarray:
        plain_index = np.moveaxis(plain_index, axis, -1).astype(int)
        mlp_index = np.moveaxis(mlp_index, axis, -1).astype(int)
        return mlp_values[mlp_index].mean(axis=-1) - plain_values[plain_index].mean(axis=-1)

    return _bootstrap(
        statistic,
        len(plain_values),
        len(mlp_values),
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )


def _bootstrap(
    statistic, n_plain: int, n_mlp: int, *, confidence: float, n_resamples: int, seed: int
) -> tuple[float, float] | None:
    """Bootstrap interval of ``statistic(plain_index, mlp_index)`` over the two groups."""
    data = (np.arange(n_plain), np.arange(n_mlp))
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate or NaN resamples: handled below
            result = scipy.stats.bootstrap(
                data,
                statistic,
                n_resamples=n_resamples,
                vectorized=True,
                confidence_level=confidence,
                method=method,
                batch=200,
                rng=np.random.default_rng(seed),
            )
        low, high = result.confidence_interval
        if math.isfinite(low) and math.isfinite(high):
            return float(low), float(high)
    return None
