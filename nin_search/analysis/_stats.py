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
    CONFIDENCE,
    MAX_BINS,
    MAX_SEEDS,
    PLANNING_COVERAGE,
    TRIALS_PER_BIN,
)
from nin_search.errors import check_int


def check_confidence(confidence: float) -> None:
    """Raises ``ValueError`` quoting ``confidence`` unless it lies in (0, 1)."""
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
    check_confidence(confidence)
    if len(values) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical values: a zero-width interval
        result = scipy.stats.ttest_1samp(np.asarray(values, dtype=float), 0.0)
        low, high = result.confidence_interval(confidence_level=confidence)
    return float(low), float(high)


def t_p_value(estimate: float, standard_error: float, dof: float) -> float:
    """Two-sided p-value of ``estimate == 0`` for a t statistic with ``dof`` degrees of freedom."""
    return float(2.0 * scipy.stats.t.sf(abs(estimate) / standard_error, dof))


def holm_rejections(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down correction: which of ``p_values`` are rejected at family-wise error
    ``alpha`` (``statsmodels.stats.multitest.multipletests`` with ``method="holm"``)."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests  # slow import: only when analysing

    return [bool(rejected) for rejected in multipletests(p_values, alpha, method="holm")[0]]


def half_width_for_seeds(sd: float, seeds: int, confidence: float = CONFIDENCE) -> float:
    """Half-width of the t-interval of a mean of ``seeds`` differences whose sd is ``sd``.

    Args:
        sd: Standard deviation of one paired difference (points).
        seeds: Number of seeds, at least 2.
        confidence: Coverage, in (0, 1).
    """
    check_confidence(confidence)
    check_int("seeds", seeds, minimum=2)
    if not sd >= 0:
        raise ValueError(f"sd must be >= 0, but got sd={sd}.")
    quantile = scipy.stats.t.ppf((1.0 + confidence) / 2.0, seeds - 1)
    return float(quantile * sd / math.sqrt(seeds))


def planning_sd(sd: float, n: int, coverage: float = PLANNING_COVERAGE) -> float:
    """The one-sided upper confidence bound of a standard deviation estimated from ``n``
    values, ``sd * sqrt((n - 1) / chi2.ppf(1 - coverage, n - 1))``: what sample-size planning
    uses so that a spread that came out small by chance does not promise a narrow interval.

    Args:
        sd: The sample standard deviation.
        n: The values it was computed from, at least 2.
        coverage: Confidence of the bound, in (0, 1).
    """
    check_confidence(coverage)
    check_int("n", n, minimum=2)
    return float(sd * math.sqrt((n - 1) / scipy.stats.chi2.ppf(1.0 - coverage, n - 1)))


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

    ``difference``, ``standard_error`` and ``interval`` are in the units of the values given
    (the callers use points); ``interval`` is ``None`` when a group has no within-bin spread
    (fewer than two models, or one a bin) or no bin holds both groups. ``plain``/``mlp`` hold
    the kept models' values and weights (summing to 1). ``size_ratio`` is how much larger the
    MLP models are than the plain ones after weighting (ratio of weighted geometric-mean
    parameter counts): the bins equalise sizes only as finely as they are cut, so 1.5 says
    the weighted MLP models still have 1.5x the parameters.
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
    standard_error: float | None = None
    size_ratio: float | None = None
    p_value: float | None = None  # of "no difference", with the interval's degrees of freedom


def _stratified_difference(
    plain: np.ndarray,
    plain_bins: np.ndarray,
    mlp: np.ndarray,
    mlp_bins: np.ndarray,
    shares: np.ndarray,
    confidence: float,
) -> tuple[float, float | None, tuple[float, float] | None, float | None]:
    """``sum_b share_b (mean_mlp_b - mean_plain_b)``, its standard error, Welch t-interval and
    two-sided p-value (of "no difference", with the same degrees of freedom).

    Every bin holds both kinds. Each kind's variance is pooled over the bins (its values minus
    their bin's mean); the difference's variance is ``sum_b share_b**2 (var_mlp / n_mlp_b +
    var_plain / n_plain_b)``. The degrees of freedom are the smaller kind's (its models minus
    its bins), Welch's conservative choice: Satterthwaite's let 8.6% of null simulations with
    6 plain and 14 MLP nets, a third of them diverged, exclude 0 at 95%; this choice 4.5%.
    The interval is ``None`` when a kind has no within-bin spread to estimate (one model a
    bin) or both kinds have none at all.
    """
    difference, terms, dofs = 0.0, [], []
    for sign, values, bins in ((-1.0, plain, plain_bins), (1.0, mlp, mlp_bins)):
        counts = np.bincount(bins, minlength=len(shares))
        means = np.bincount(bins, weights=values, minlength=len(shares)) / counts
        difference += sign * float(np.sum(shares * means))
        dof = len(values) - len(shares)
        if dof >= 1:  # else no spread to estimate: the difference still takes both kinds
            variance = float(np.sum((values - means[bins]) ** 2)) / dof
            terms.append(variance * float(np.sum(shares**2 / counts)))
        dofs.append(dof)
    if min(dofs) < 1:
        return difference, None, None, None
    standard_error = math.sqrt(sum(terms))
    if standard_error == 0.0:
        return difference, None, None, None
    half_width = scipy.stats.t.ppf((1.0 + confidence) / 2.0, min(dofs)) * standard_error
    interval = (difference - half_width, difference + half_width)
    return difference, standard_error, interval, t_p_value(difference, standard_error, min(dofs))


def normalised_difference(
    values: Sequence[float],
    params: Sequence[float],
    is_mlp: Sequence[bool],
    *,
    confidence: float = CONFIDENCE,
    bounds: tuple[float, float] | None = None,
) -> NormalisedDifference:
    """Complexity-normalised MLP minus plain difference, its t-interval and the weighted KS.

    Bins are quantile bins of the pooled log parameter counts (:func:`number_of_bins`); a bin
    where one group is empty is dropped (and counted). The difference is the pooled-share
    weighted sum of the bins' differences of means; its interval is the Welch t-interval of
    that sum (:func:`_stratified_difference`; bin edges and shares fixed). It
    holds its coverage at the few trials a search samples at random, where a bootstrap
    interval does not (the null simulations in ``tests/test_analysis.py``).

    Args:
        values: One value per model (e.g. accuracy in points).
        params: Parameter counts, > 0.
        is_mlp: Whether each model has an MLP conv (else plain conv) at the stage.
        confidence: Coverage of the interval, in (0, 1).
        bounds: Where the difference can lie at all (accuracy points: -100 and 100); the
            interval is clipped to it. None: no clipping.
    """
    check_confidence(confidence)
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
    values_array, mlp_mask, log_params = (
        values_array[keep],
        mlp_mask[keep],
        np.log(params_array[keep]),
    )
    shares = np.bincount(bins) / len(bins)
    plain_counts = np.bincount(bins[~mlp_mask], minlength=len(kept))
    mlp_counts = np.bincount(bins[mlp_mask], minlength=len(kept))
    weights = shares[bins] / np.where(mlp_mask, mlp_counts[bins], plain_counts[bins])
    plain, mlp = values_array[~mlp_mask], values_array[mlp_mask]
    plain_bins, mlp_bins = bins[~mlp_mask], bins[mlp_mask]
    difference, standard_error, interval, p_value = _stratified_difference(
        plain, plain_bins, mlp, mlp_bins, shares, confidence
    )
    if interval is not None and bounds is not None:
        interval = (max(interval[0], bounds[0]), min(interval[1], bounds[1]))
    size_gap = np.sum(weights[mlp_mask] * log_params[mlp_mask]) - np.sum(
        weights[~mlp_mask] * log_params[~mlp_mask]
    )
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
        standard_error=standard_error,
        size_ratio=float(np.exp(size_gap)),
        p_value=p_value,
    )


class AdjustedDifference(NamedTuple):
    """MLP minus plain, adjusted for size by a regression (:func:`size_adjusted_difference`).

    ``difference``/``standard_error``/``interval`` are in the units of the values given;
    ``interval`` is ``None`` when the smaller kind has fewer than two models or the fit leaves
    no spread. ``points_per_decade`` is the fitted change of the value per tenfold parameters.
    """

    difference: float
    interval: tuple[float, float] | None
    standard_error: float | None
    points_per_decade: float
    n_plain: int
    n_mlp: int
    p_value: float | None = None  # of "no difference", with the interval's degrees of freedom


def size_adjusted_difference(
    values: Sequence[float],
    params: Sequence[float],
    is_mlp: Sequence[bool],
    *,
    confidence: float = CONFIDENCE,
    bounds: tuple[float, float] | None = None,
) -> AdjustedDifference | None:
    """MLP minus plain at equal parameter count, by least squares on ``value ~ kind + log
    params`` (an analysis of covariance), with a t-interval.

    The binned difference (:func:`normalised_difference`) equalises sizes only as finely as
    its few bins are cut; this removes a linear size effect whatever the bins, and uses every
    model. Its standard error is heteroscedasticity-robust (HC3: the kinds may spread
    differently, and diverged nets sit at chance) and its degrees of freedom are the smaller
    kind's models minus one, the conservative choice of :func:`_stratified_difference`; null
    simulations at 3+4 to 20+20 models exclude 0 in at most 4.2% at 95%, also when MLP nets
    are larger and size raises accuracy (benchmarks/interval_coverage.py; a smaller version in
    tests/test_analysis.py).

    Args:
        values: One value per model (e.g. accuracy in points).
        params: Parameter counts, > 0.
        is_mlp: Whether each model has an MLP conv (else plain conv) at the stage.
        confidence: Coverage of the interval, in (0, 1).
        bounds: Where the difference can lie at all; the interval is clipped to it.

    Returns:
        ``None`` when a kind is missing or sizes and kinds cannot be told apart (every model
        of one size, or each kind of one size).
    """
    check_confidence(confidence)
    values_array, params_array, mlp_mask = _checked_models(values, params, is_mlp)
    n_mlp = int(mlp_mask.sum())
    n_plain = len(mlp_mask) - n_mlp
    design = np.column_stack([np.ones(len(mlp_mask)), mlp_mask, np.log10(params_array)])
    if min(n_plain, n_mlp) == 0 or len(mlp_mask) <= 3 or np.linalg.matrix_rank(design) < 3:
        return None
    from statsmodels.regression.linear_model import OLS  # slow import: only when analysing

    with np.errstate(divide="ignore", invalid="ignore"):
        fit = OLS(values_array, design).fit(cov_type="HC3")
    difference, slope = float(fit.params[1]), float(fit.params[2])
    standard_error = float(fit.bse[1])
    dof = min(n_plain, n_mlp) - 1
    if dof < 1 or not math.isfinite(standard_error) or standard_error == 0.0:
        return AdjustedDifference(difference, None, None, slope, n_plain, n_mlp)
    half_width = scipy.stats.t.ppf((1.0 + confidence) / 2.0, dof) * standard_error
    interval = (difference - half_width, difference + half_width)
    if bounds is not None:
        interval = (max(interval[0], bounds[0]), min(interval[1], bounds[1]))
    p_value = t_p_value(difference, standard_error, dof)
    return AdjustedDifference(difference, interval, standard_error, slope, n_plain, n_mlp, p_value)


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


def mean_difference_interval(
    plain: Sequence[float], mlp: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Welch's t-interval of ``mean(mlp) - mean(plain)``, with the smaller group's degrees of
    freedom (see :func:`_stratified_difference`; ``None`` below two values a group, or with no
    spread at all).

    Args:
        plain: One group's values.
        mlp: The other group's values.
        confidence: Coverage, in (0, 1).
    """
    check_confidence(confidence)
    plain_values, mlp_values = np.asarray(plain, dtype=float), np.asarray(mlp, dtype=float)
    if len(plain_values) < 2 or len(mlp_values) < 2:
        return None
    one_bin = np.ones(1)
    _, _, interval, _ = _stratified_difference(
        plain_values,
        np.zeros(len(plain_values), dtype=int),
        mlp_values,
        np.zeros(len(mlp_values), dtype=int),
        one_bin,
        confidence,
    )
    return interval
