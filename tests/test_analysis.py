"""The analysis on synthetic studies whose truth is known: what MLP conv does is built in.

Accuracies are drawn from a known formula (parameter count, learning rate, and an MLP conv effect
that is 0 or +2 points), so a test can say what the right answer is and check that it is found.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import scipy.stats
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nin_search import records
from nin_search.analysis import (
    RegimeEffect,
    ablation_settle_text,
    answer_lines,
    consensus_lines,
    find_ablation_study,
    get_ablation_info,
    get_answer,
    get_consensus_info,
    get_design_space_info,
    half_width_for_seeds,
    mean_difference_interval,
    normalised_difference,
    planning_sd,
    regime_text,
    searched_study_names,
    seeds_for_half_width,
    seeds_to_settle,
    size_adjusted_difference,
    t_interval,
)
from nin_search.analysis._answer import _interval_tests
from nin_search.report import get_stage_verdicts
from nin_search.spec import ArchSpec, StageSpec

T_975_2 = 4.302652729749462  # t quantile, 97.5%, 2 degrees of freedom (tables: 4.303)


def arch(*kinds: str) -> dict:
    """An ArchSpec dict with one stage per kind (MLP stages get one 1x1 layer)."""
    stages = [
        StageSpec(
            kind, 3, 16, (16,) if kind == "mlp" else (), "max" if index < len(kinds) - 1 else "none"
        )
        for index, kind in enumerate(kinds)
    ]
    return ArchSpec(stages=tuple(stages)).to_dict()


def searched_trial(
    kind: str,
    accuracy: float | None,
    *,
    params: float,
    sampled_by: str | None = "random",
    learning_rate: float = 0.01,
    epochs: int = 2,
    state: TrialState = TrialState.COMPLETE,
) -> optuna.trial.FrozenTrial:
    """A searched trial with stage 0 of ``kind`` (stage 1 always plain), reporting each epoch."""
    user_attrs = {records.ARCH: arch(kind, "plain"), records.PARAMS: int(params)}
    if sampled_by is not None:
        user_attrs[records.SAMPLED_BY] = sampled_by
    final = accuracy if state == TrialState.COMPLETE else None
    return create_trial(
        state=state,
        value=final,
        params={"learning_rate": learning_rate},
        distributions={"learning_rate": FloatDistribution(1e-4, 1.0, log=True)},
        user_attrs=user_attrs,
        intermediate_values={
            epoch: accuracy - 0.05 * (epochs - epoch) for epoch in range(1, epochs + 1)
        },
    )


def true_accuracy(params, learning_rate, *, mlp, mlp_effect, generator):
    """Accuracy rises 8 points per decade of parameters and peaks at learning rate 0.01."""
    return (
        0.55
        + 0.08 * math.log10(params / 1000)
        - 0.03 * (math.log10(learning_rate) + 2) ** 2
        + (mlp_effect if mlp else 0.0)
        + generator.normal(0, 0.005)
    )


def confounded_study(*, mlp_effect: float, seed: int = 0, storage=None, name=None):
    """160 random trials, then 80 chosen by a "model" that gives MLP convs more parameters and a
    better learning rate. In random trials the kind is independent of the learning rate, but an
    MLP conv has 1.8x the parameters of the same network with a plain conv, as in reality."""
    generator = np.random.default_rng(seed)
    study = optuna.create_study(direction="maximize", storage=storage, study_name=name)
    for _ in range(160):
        mlp = bool(generator.random() < 0.5)
        params = math.exp(generator.uniform(math.log(5e3), math.log(5e4))) * (1.8 if mlp else 1.0)
        learning_rate = 10 ** generator.uniform(-3, -1)
        value = true_accuracy(
            params, learning_rate, mlp=mlp, mlp_effect=mlp_effect, generator=generator
        )
        study.add_trial(
            searched_trial(
                "mlp" if mlp else "plain", value, params=params, learning_rate=learning_rate
            )
        )
    for _ in range(80):
        mlp = bool(generator.random() < 0.5)
        if mlp:
            params = math.exp(generator.uniform(math.log(2e4), math.log(5e4))) * 1.8
            learning_rate = 10 ** (-2 + generator.normal(0, 0.1))
        else:
            params = math.exp(generator.uniform(math.log(5e3), math.log(2e4)))
            learning_rate = 10 ** generator.uniform(-3, -2.5)
        value = true_accuracy(
            params, learning_rate, mlp=mlp, mlp_effect=mlp_effect, generator=generator
        )
        study.add_trial(
            searched_trial(
                "mlp" if mlp else "plain",
                value,
                params=params,
                learning_rate=learning_rate,
                sampled_by="model",
            )
        )
    return study


# ----------------------------------------------------------------------------------------------
# Pure statistics
# ----------------------------------------------------------------------------------------------


def test_the_t_interval_of_one_two_three_is_two_plus_minus_t_over_root_three():
    low, high = t_interval([1.0, 2.0, 3.0])
    half_width = T_975_2 * 1.0 / math.sqrt(3)
    assert (low, high) == pytest.approx((2.0 - half_width, 2.0 + half_width), abs=1e-12)
    assert round(low, 3) == -0.484 and round(high, 3) == 4.484
    assert t_interval([1.5]) is None
    with pytest.raises(ValueError, match="confidence=1.2"):
        t_interval([1.0, 2.0], 1.2)


def test_seed_counts_follow_the_t_quantiles():
    # sd 1: 4 seeds give 3.1824/2 = 1.5912, 5 seeds give 2.7764/sqrt(5) = 1.2417.
    assert half_width_for_seeds(1.0, 4) == pytest.approx(1.5912, abs=1e-4)
    assert half_width_for_seeds(1.0, 5) == pytest.approx(1.2417, abs=1e-4)
    assert seeds_for_half_width(1.0, 1.3) == 5
    assert seeds_for_half_width(1.0, 1.6) == 4
    assert seeds_for_half_width(1.0, 1e-3) is None  # beyond 1000 seeds
    with pytest.raises(ValueError, match="seeds=1"):
        half_width_for_seeds(1.0, 1)


def test_normalisation_weights_each_kind_to_the_pooled_size_distribution():
    # Two size bins; within each, MLP is exactly 1 point better, but MLP sits mostly in the
    # large bin, where everything is 10 points better: the raw means differ by far more.
    params = [1e3] * 6 + [1e5] * 10
    is_mlp = [False] * 4 + [True] * 2 + [False] * 2 + [True] * 8
    values = [50.0] * 4 + [51.0] * 2 + [60.0] * 2 + [61.0] * 8
    result = normalised_difference(values, params, is_mlp)
    assert result.difference == pytest.approx(1.0)
    assert result.bins_used == 2 and result.bins_dropped == 0
    raw = np.mean([v for v, m in zip(values, is_mlp, strict=True) if m]) - np.mean(
        [v for v, m in zip(values, is_mlp, strict=True) if not m]
    )
    assert raw == pytest.approx((2 * 51 + 8 * 61) / 10 - (4 * 50 + 2 * 60) / 6)  # 5.67
    # Weights: pooled share 6/16 and 10/16 over the kind's count in the bin; each kind sums to 1.
    assert result.plain_weights == pytest.approx([6 / 16 / 4] * 4 + [10 / 16 / 2] * 2)
    assert sum(result.mlp_weights) == pytest.approx(1.0)
    # Weighted EDFs at 60 points: plain has all its weight (1.0), MLP only its small bin's 6/16.
    assert result.ks_statistic == pytest.approx(1.0 - 6 / 16)


def test_a_bin_one_kind_misses_is_dropped_and_counted():
    params = [1e3] * 8 + [1e5] * 8
    is_mlp = [False, True] * 4 + [True] * 8
    values = [50.0, 52.0] * 4 + [70.0] * 8
    result = normalised_difference(values, params, is_mlp)
    assert result.difference == pytest.approx(2.0)
    assert (result.bins_used, result.bins_dropped, result.trials_dropped) == (1, 1, 8)
    assert (result.n_plain, result.n_mlp) == (4, 4)


def test_with_one_bin_the_interval_is_welchs_with_the_smaller_groups_degrees_of_freedom():
    plain, mlp = [70.0, 74.0, 71.5, 69.0], [75.0, 71.0, 80.0, 78.5, 77.0, 76.0]
    welch = scipy.stats.ttest_ind(mlp, plain, equal_var=False)  # Satterthwaite's df: 7.9
    standard_error = welch.statistic and (np.mean(mlp) - np.mean(plain)) / welch.statistic
    half_width = scipy.stats.t.ppf(0.975, 3) * standard_error  # 4 plain models: 3 df
    expected = (
        np.mean(mlp) - np.mean(plain) - half_width,
        np.mean(mlp) - np.mean(plain) + half_width,
    )
    assert mean_difference_interval(plain, mlp) == pytest.approx(expected)
    satterthwaite = welch.confidence_interval(0.95)
    assert expected[0] < satterthwaite.low and satterthwaite.high < expected[1]
    result = normalised_difference(plain + mlp, [1e4] * 10, [False] * 4 + [True] * 6)
    assert result.bins_used == 1
    assert result.interval == pytest.approx(tuple(expected))
    assert mean_difference_interval([70.0], mlp) is None  # no spread to estimate


@pytest.mark.parametrize(
    ("plain", "mlp"),
    [([29.17], [33.33]), ([29.17], [33.33, 40.0]), ([29.17, 20.0], [33.33]), ([20.0], [30.0])],
)
def test_a_kind_with_one_model_a_bin_gives_the_difference_of_means_and_no_interval(plain, mlp):
    # No spread to estimate for that kind, so no interval; the difference is still MLP minus
    # plain (it once stopped at minus the plain mean when the plain kind had one model).
    result = normalised_difference(plain + mlp, [3e3] * (len(plain) + len(mlp)),
                                   [False] * len(plain) + [True] * len(mlp))  # fmt: skip
    assert result.difference == pytest.approx(np.mean(mlp) - np.mean(plain))
    assert result.interval is None and result.standard_error is None


@pytest.mark.parametrize(("n_plain", "n_mlp"), [(3, 4), (6, 14), (14, 6), (12, 12)])
def test_with_no_effect_an_effect_is_detected_about_as_often_as_the_confidence_allows(
    n_plain, n_mlp
):
    """Null simulations at the few random trials a search has: kind changes nothing, MLP nets
    vary twice as much, and a third of all nets diverge to chance. A 95% interval should
    exclude 0 in at most about 5% of them; the bootstrap interval this replaced did in 6-19%
    (benchmarks/interval_coverage.py), Satterthwaite's degrees of freedom in up to 8.6%."""
    generator = np.random.default_rng(n_plain * 100 + n_mlp)
    is_mlp = np.array([False] * n_plain + [True] * n_mlp)
    runs, detected = 400, 0
    for _ in range(runs):
        params = np.exp(generator.uniform(np.log(5e3), np.log(2e5), len(is_mlp)))
        spread = np.where(is_mlp, 10.0, 5.0)
        values = np.where(
            generator.random(len(is_mlp)) < 1 / 3,
            generator.normal(10.0, 1.0, len(is_mlp)),  # diverged: chance accuracy
            generator.normal(70.0, spread),
        )
        interval = normalised_difference(values, params, is_mlp).interval
        detected += interval is not None and (interval[0] > 0 or interval[1] < 0)
    assert detected / runs <= 0.075  # 5% at most expected; 0.075 is 2.3 binomial sd above it


# ----------------------------------------------------------------------------------------------
# Design space: the truth is built in
# ----------------------------------------------------------------------------------------------


def test_no_effect_but_a_biased_sampler_fools_the_naive_comparison_not_the_design_space():
    study = confounded_study(mlp_effect=0.0)
    # The old verdict (all completed trials) is fooled by the sampler and the extra parameters.
    assert get_stage_verdicts(study)[0].verdict == "MLP conv helps"
    effect = get_design_space_info(study)[0]
    assert effect.naive_difference > 3.0
    # Random trials alone still see MLP convs' extra parameters (8 points/decade * log10 1.8).
    assert effect.unweighted_difference > 1.5
    # Random trials at equal complexity: no effect, and the interval says so.
    assert not effect.verdict.startswith("MLP conv helps")
    assert effect.verdict.startswith("no effect detected")
    low, high = effect.interval
    assert low < 0 < high and high - low < 1.5
    assert abs(effect.difference) < 0.5
    assert effect.epoch == 2
    assert effect.n_random_plain + effect.n_random_mlp == 160
    assert effect.n_plain + effect.n_mlp + effect.trials_dropped == 160


def test_the_size_adjusted_difference_removes_the_size_effect_the_unweighted_one_keeps():
    effect = get_design_space_info(confounded_study(mlp_effect=0.0))[0]
    assert effect.unweighted_difference > 1.5  # MLP nets are 1.8x larger: 2 points from size
    adjusted = effect.adjusted
    assert abs(adjusted.difference) < 0.5
    assert adjusted.interval[0] < 0 < adjusted.interval[1]
    assert adjusted.points_per_decade == pytest.approx(8.0, abs=1.0)  # the simulated slope
    assert (adjusted.n_plain, adjusted.n_mlp) == (effect.n_random_plain, effect.n_random_mlp)
    helps = get_design_space_info(confounded_study(mlp_effect=0.02))[0].adjusted
    assert helps.difference == pytest.approx(2.0, abs=0.4) and helps.interval[0] > 0


def test_the_size_adjusted_difference_needs_sizes_that_tell_kind_and_size_apart():
    assert size_adjusted_difference([70, 71, 72, 73], [1e4] * 4, [False, True, False, True]) is None
    one_size_each = size_adjusted_difference(
        [70, 71, 72, 73], [1e4, 2e4, 1e4, 2e4], [False, True, False, True]
    )
    assert one_size_each is None  # kind and size are the same split
    assert size_adjusted_difference([70, 71, 72], [1e4, 2e4, 3e4], [False, True, True]) is None
    with pytest.raises(ValueError, match="confidence"):
        size_adjusted_difference([70, 71], [1e4, 2e4], [False, True], confidence=1.5)


@pytest.mark.parametrize(("n_plain", "n_mlp"), [(3, 4), (6, 14), (14, 6), (12, 12)])
def test_with_no_effect_the_size_adjusted_interval_excludes_zero_no_more_than_it_should(
    n_plain, n_mlp
):
    """Null simulations: MLP nets 1.8x larger, accuracy rising with size for both kinds (the
    confound the adjustment removes), and the hardest spread above (a third diverged)."""
    generator = np.random.default_rng(n_plain * 100 + n_mlp + 7)
    is_mlp = np.array([False] * n_plain + [True] * n_mlp)
    runs, detected = 400, 0
    for run in range(runs):
        log_params = generator.uniform(np.log(5e3), np.log(2e5), len(is_mlp))
        if run % 2:  # the confound
            params = np.exp(log_params + np.log(1.8) * is_mlp)
            values = generator.normal(30.0, 5.0, len(is_mlp)) + 8.0 * np.log10(params)
        else:
            params = np.exp(log_params)
            values = np.where(
                generator.random(len(is_mlp)) < 1 / 3,
                generator.normal(10.0, 1.0, len(is_mlp)),
                generator.normal(70.0, np.where(is_mlp, 10.0, 5.0)),
            )
        fit = size_adjusted_difference(values, params, is_mlp)
        detected += bool(fit and fit.interval and (fit.interval[0] > 0 or fit.interval[1] < 0))
    assert detected / runs <= 0.075  # 5% at most expected; 0.075 is 2.3 binomial sd above it


def test_an_mlp_conv_worth_two_points_at_equal_parameters_is_detected():
    effect = get_design_space_info(confounded_study(mlp_effect=0.02))[0]
    assert effect.verdict.startswith("MLP conv helps (+2.")
    low, high = effect.interval
    assert 0 < low < 2.0 < high
    assert effect.difference == pytest.approx(2.0, abs=0.4)
    assert effect.ks_statistic > 0.3
    plain, mlp = effect.curves
    assert (plain.kind, mlp.kind) == ("plain", "mlp")
    assert plain.cumulative_share[-1] == pytest.approx(1.0)
    assert plain.errors == sorted(plain.errors)
    # MLP has the lower errors: its weighted EDF is ahead at the plain median error.
    median_error = plain.errors[np.searchsorted(plain.cumulative_share, 0.5)]
    mlp_share = mlp.cumulative_share[np.searchsorted(mlp.errors, median_error, side="right") - 1]
    assert mlp_share > 0.7


def test_only_random_trials_enter_and_pruned_ones_at_the_common_epoch():
    trials = [
        searched_trial("plain", 0.80, params=1e4, epochs=3),  # epoch 2: 0.75
        searched_trial("plain", 0.70, params=1e4, epochs=3),  # epoch 2: 0.65
        searched_trial("mlp", 0.90, params=1e4, epochs=3),  # epoch 2: 0.85
        searched_trial("mlp", 0.60, params=1e4, epochs=2, state=TrialState.PRUNED),  # 0.60
        searched_trial("mlp", 0.99, params=1e4, sampled_by="model"),
        searched_trial("mlp", 0.99, params=1e4, sampled_by=None),
    ]
    study = optuna.create_study(direction="maximize")
    for trial in trials:
        study.add_trial(trial)
    effect = get_design_space_info(study)[0]
    assert effect.epoch == 2
    assert (effect.n_plain, effect.n_mlp) == (2, 2)
    assert effect.difference == pytest.approx((85 + 60) / 2 - (75 + 65) / 2)
    assert effect.n_unknown_origin == 1
    assert effect.naive_difference == pytest.approx((90 + 99 + 99) / 3 - 75)


def size_study(*, small_effect: float, seed: int = 0):
    """Three size clusters (5k, 20k, 80k params); MLP conv helps only in the small one."""
    generator = np.random.default_rng(seed)
    study = optuna.create_study(direction="maximize")
    for size in (5e3, 2e4, 8e4):
        for index in range(60):
            mlp = index % 2 == 1
            params = size * math.exp(generator.uniform(-0.1, 0.1))
            effect = small_effect if size == 5e3 and mlp else 0.0
            value = 0.5 + 0.05 * math.log10(size) + effect + generator.normal(0, 0.005)
            study.add_trial(searched_trial("mlp" if mlp else "plain", value, params=params))
    return study


def test_the_regime_says_where_mlp_conv_helps_when_the_intervals_say_so():
    effect = get_design_space_info(size_study(small_effect=0.03))[0]
    small, medium, large = effect.regimes
    assert small.difference == pytest.approx(3.0, abs=0.5) and small.interval[0] > 0
    assert medium.interval[0] < 0 < medium.interval[1]
    assert large.interval[0] < 0 < large.interval[1]
    assert (small.n_plain, small.n_mlp) == (30, 30)
    assert effect.regime.startswith("MLP conv helps in small networks (<")
    assert effect.regime.endswith("params), no difference detected above")


def test_the_regime_is_unsure_when_the_size_ranges_overlap():
    def regime(size, interval):
        return RegimeEffect(size, None, None, sum(interval) / 2, interval, 0.95, 5, 5)

    overlapping = [regime("small", (0.1, 3.0)), regime("medium", (-1.0, 1.0))]
    assert regime_text(overlapping).startswith("unsure whether it depends on size")
    same = [regime("small", (0.5, 2.0)), regime("medium", (0.4, 2.5)), regime("large", (1, 3))]
    assert regime_text(same) == "MLP conv helps at every size"
    assert regime_text([]).startswith("unsure how it depends on size")
    no_interval = RegimeEffect("large", None, None, 36.3, None, 0.95, 6, 1)
    assert regime_text([*overlapping, no_interval]) == (
        "unsure whether it depends on size (1 of 3 size ranges has no interval, the others' "
        "intervals overlap)"
    )
    assert regime_text([no_interval, no_interval._replace(size="small")]) == (
        "unsure whether it depends on size (no size range has an interval)"
    )


# ----------------------------------------------------------------------------------------------
# Paired ablations: hand-made results, numbers checked to the digit
# ----------------------------------------------------------------------------------------------


def ablation_trial(source, stage, variant, seed, kinds, accuracy, *, params=1000):
    return create_trial(
        value=accuracy,
        user_attrs={
            records.ABLATION_SOURCE: source,
            records.ABLATION_STAGE: records.ORIGINAL_STAGE if variant == "original" else stage,
            records.ABLATION_VARIANT: variant,
            records.ABLATION_SEED: seed,
            records.ARCH: arch(*kinds),
            records.PARAMS: params,
        },
    )


def ablation_study_of(trials, *, storage=None, name=None):
    study = optuna.create_study(direction="maximize", storage=storage, study_name=name)
    for trial in trials:
        study.add_trial(trial)
    study.set_user_attr(records.CREATED_BY, "test")  # as nin-search marks the studies it makes
    return study


def paired(source, stage, original_kinds, changed_kinds, differences, *, variant="flipped"):
    """Original and changed trials whose MLP-minus-plain differences are ``differences``
    (points), on seeds 1..n; the original scores 80% on every seed."""
    original_is_mlp = original_kinds[stage] == "mlp"
    trials = []
    for seed, difference in enumerate(differences, start=1):
        changed = 0.80 - difference / 100 if original_is_mlp else 0.80 + difference / 100
        trials.append(ablation_trial(source, stage, "original", seed, original_kinds, 0.80))
        params = 1300 if variant == "flipped" else 1010  # flipped gains params; matched not
        trials.append(
            ablation_trial(source, stage, variant, seed, changed_kinds, changed, params=params)
        )
    return trials


def hand_made_ablation():
    plain_plain, mlp_plain = ("plain", "plain"), ("mlp", "plain")
    trials = [
        # Trial 7, stage 0: the original has a plain conv there; MLP conv wins by 1, 2, 3.
        ablation_trial(7, 0, "original", 1, plain_plain, 0.80, params=1000),
        ablation_trial(7, 0, "original", 2, plain_plain, 0.81, params=1000),
        ablation_trial(7, 0, "original", 3, plain_plain, 0.79, params=1000),
        ablation_trial(7, 0, "flipped", 1, mlp_plain, 0.81, params=1300),
        ablation_trial(7, 0, "flipped", 2, mlp_plain, 0.83, params=1300),
        ablation_trial(7, 0, "flipped", 3, mlp_plain, 0.82, params=1300),
        # Matched (MLP conv at the original's 1,000 parameters): 0, +1, -1.
        ablation_trial(7, 0, "matched", 1, mlp_plain, 0.80, params=1010),
        ablation_trial(7, 0, "matched", 2, mlp_plain, 0.82, params=1010),
        ablation_trial(7, 0, "matched", 3, mlp_plain, 0.78, params=1010),
        # Trial 9 has an MLP conv at stage 0: the plain side is the flipped one.
        ablation_trial(9, 0, "original", 1, mlp_plain, 0.85, params=2000),
        ablation_trial(9, 0, "original", 2, mlp_plain, 0.85, params=2000),
        ablation_trial(9, 0, "flipped", 1, plain_plain, 0.83, params=1500),
        ablation_trial(9, 0, "flipped", 2, plain_plain, 0.84, params=1500),
        ablation_trial(9, 0, "flipped", 3, plain_plain, 0.10, params=1500),  # no original seed 3
        ablation_trial(9, 0, "matched", 1, plain_plain, 0.84, params=2000),  # one seed only
        ablation_trial(9, 0, "flipped", 4, plain_plain, 0.84, params=1500),
    ]
    trials.append(
        create_trial(state=TrialState.FAIL, user_attrs=dict(trials[-1].user_attrs))  # ignored
    )
    # Seed index 0 of an older study replayed the searched run (picked as the best, so
    # biased): left out, whatever it says.
    trials.append(ablation_trial(7, 0, "original", 0, plain_plain, 0.99, params=1000))
    trials.append(ablation_trial(7, 0, "flipped", 0, mlp_plain, 0.10, params=1300))
    return ablation_study_of(trials)


def test_paired_differences_means_and_t_intervals_are_checked_to_the_digit():
    seven, nine = get_ablation_info(hand_made_ablation())
    flipped = seven.flipped
    assert (flipped.source, flipped.stage, flipped.original_kind) == (7, 0, "plain")
    assert flipped.seeds == [1, 2, 3]
    assert flipped.differences == pytest.approx([1.0, 2.0, 3.0], abs=1e-9)
    assert flipped.mean == pytest.approx(2.0)
    assert flipped.sd == pytest.approx(1.0)
    half_width = T_975_2 / math.sqrt(3)  # 2.484
    assert flipped.interval == pytest.approx((2.0 - half_width, 2.0 + half_width))
    assert [round(bound, 3) for bound in flipped.interval] == [-0.484, 4.484]
    expected_p = scipy.stats.ttest_1samp(flipped.differences, 0.0).pvalue
    assert flipped.p_value == pytest.approx(expected_p) and flipped.p_value > 0.05
    assert (flipped.mlp_params, flipped.plain_params) == (1300, 1000)
    assert (
        flipped.verdict
        == "no effect detected: difference +2.0 points, 95% CI -0.5..+4.5 (n=3 seeds)"
    )
    matched = seven.matched
    assert matched.differences == pytest.approx([0.0, 1.0, -1.0], abs=1e-9)
    assert matched.mean == pytest.approx(0.0, abs=1e-9)
    assert matched.interval == pytest.approx((-half_width, half_width))
    assert (matched.mlp_params, matched.plain_params) == (1010, 1000)
    assert seven.reading == "no effect detected, with or without equal parameters"
    assert seven.original_accuracy == pytest.approx(80.0)

    # The original has the MLP conv: MLP minus plain is original minus flipped, +2 and +1.
    # Seed 3 has no original and seed 4 no pair either: left out.
    assert nine.flipped.original_kind == "mlp"
    assert nine.flipped.seeds == [1, 2]
    assert nine.flipped.differences == pytest.approx([2.0, 1.0], abs=1e-9)
    t_975_1 = 12.706204736174698
    assert nine.flipped.interval == pytest.approx((1.5 - t_975_1 * 0.5, 1.5 + t_975_1 * 0.5))
    assert (nine.flipped.mlp_params, nine.flipped.plain_params) == (2000, 1500)
    assert nine.matched.n == 1 and nine.matched.interval is None and nine.matched.sd is None
    assert nine.matched.verdict == "unsure: difference +1.0 points, no interval (n=1 seed)"
    assert nine.reading == "unsure: one seed gives no interval"


def test_what_would_settle_it_plans_for_the_sd_s_upper_bound_and_t_quantiles():
    seven, nine = get_ablation_info(hand_made_ablation())
    # 3 seeds' sd 1 is planned as its 80% upper bound: sqrt(2 / chi2.ppf(0.2, 2)) = 2.117.
    planned = math.sqrt(2 / scipy.stats.chi2.ppf(0.2, 2))
    assert planning_sd(1.0, 3) == pytest.approx(planned) and planned == pytest.approx(2.117, 1e-3)
    caveat = "or less, unless the spread is over 2.1x the 3 seeds' (its 80% upper bound)"
    # sd 1, mean 2: aim at +-4/3; 12 seeds give 2.2010 * 2.117 / sqrt(12) = 1.345 (> 4/3), 13
    # give 2.1788 * 2.117 / sqrt(13) = 1.279.
    assert ablation_settle_text(seven.flipped) == (
        f"`nin-search ablate --seeds 13` narrows the interval to about ±1.3 points {caveat}"
    )
    # sd 1, mean 0: aim at the smallest effect, +-0.5: 72 seeds give 1.9939 * 2.117 / sqrt(72).
    assert half_width_for_seeds(planned, 72) <= 0.5 < half_width_for_seeds(planned, 71)
    assert ablation_settle_text(seven.matched) == (
        f"`nin-search ablate --seeds 72` narrows the interval to about ±0.5 points {caveat}"
    )
    assert ablation_settle_text(nine.matched) == (
        "`nin-search ablate --seeds 3` gives an interval (one seed gives none)"
    )


@pytest.mark.parametrize("difference", [0.0, 0.35])
def test_the_same_difference_on_every_seed_claims_no_certainty(difference):
    # A saturated validation split: 285 of 288 images on both sides on every seed (or one
    # image apart every time). The t-interval would have zero width; there is none.
    kinds = ("plain", "plain")
    trials = paired(3, 0, kinds, ("mlp", "plain"), [difference] * 3)
    trials += paired(3, 0, kinds, ("mlp", "plain"), [0.5, -0.5, 0.1], variant="matched")
    (ablation,) = get_ablation_info(ablation_study_of(trials))
    flipped = ablation.flipped
    assert flipped.interval is None and flipped.sd == pytest.approx(0.0, abs=1e-9)
    assert flipped.verdict == (
        f"unsure: difference {difference:+.1f} points, no interval "
        "(n=3 seeds, the same difference on every seed)"
    )
    assert (
        ablation.reading == "unsure: every seed gave the same difference, so there is no interval"
    )
    assert seeds_to_settle(flipped) is None
    assert "more seeds cannot" in ablation_settle_text(flipped)


def test_one_image_apart_on_every_seed_is_a_tie_despite_float_rounding():
    # 285/288 - 284/288 and 284/288 - 283/288 differ in the last digit: still no interval.
    kinds = ("plain", "plain")
    trials = []
    for seed, plain_correct in enumerate((284, 285, 283)):
        trials.append(ablation_trial(3, 0, "original", seed, kinds, plain_correct / 288))
        trials.append(
            ablation_trial(3, 0, "flipped", seed, ("mlp", "plain"), (plain_correct + 1) / 288)
        )
    (ablation,) = get_ablation_info(ablation_study_of(trials))
    assert len(set(ablation.flipped.differences)) > 1  # the rounding this test is about
    assert ablation.flipped.interval is None and ablation.flipped.sd == 0.0
    assert ablation.flipped.verdict.startswith("unsure: difference +0.3 points, no interval")


@pytest.mark.parametrize(
    ("matched", "reading"),
    [
        (
            [0.5, -0.5, 0.1],
            "the gain comes with its extra parameters (none detected at equal ones)",
        ),
        ([1.0, 1.2, 0.9], "the structure helps at equal parameters"),
        ([-1.0, -1.2, -0.9], "the gain comes with its extra parameters (it hurts at equal ones)"),
    ],
)
def test_flipped_and_matched_are_read_together(matched, reading):
    kinds = ("plain", "plain")
    trials = paired(3, 0, kinds, ("mlp", "plain"), [2.0, 2.2, 1.8])
    trials += paired(3, 0, kinds, ("mlp", "plain"), matched, variant="matched")
    (ablation,) = get_ablation_info(ablation_study_of(trials))
    assert ablation.flipped.verdict == "MLP conv helps (+2.0 points, 95% CI +1.5..+2.5, n=3 seeds)"
    assert ablation.reading == reading
    assert ablation_settle_text(ablation.flipped) is None  # settled


def test_the_companion_ablation_study_is_found_in_the_same_storage():
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="digits")
    assert find_ablation_study(study) is None
    optuna.create_study(storage=storage, study_name=records.ablation_study_name("digits"))
    assert find_ablation_study(study).study_name == "digits:ablation"
    assert searched_study_names(["a", "a:ablation", "b"]) == ["a", "b"]


# ----------------------------------------------------------------------------------------------
# Consensus across studies
# ----------------------------------------------------------------------------------------------


def studies_with_effects(effects_by_study: dict[str, list[float] | None]):
    """One searched study per name (trial 0 ablated) and its companion with those flipped
    differences at stage 0; ``None``: no companion."""
    storage = optuna.storages.InMemoryStorage()
    studies = []
    for name, differences in effects_by_study.items():
        study = ablation_study_of(
            [searched_trial("plain", 0.8, params=1e4)], storage=storage, name=name
        )
        studies.append(study)
        if differences is not None:
            trials = paired(0, 0, ("plain", "plain"), ("mlp", "plain"), differences)
            ablation_study_of(trials, storage=storage, name=records.ablation_study_name(name))
    return studies


def test_studies_with_the_same_effect_agree_and_pool_by_inverse_variance():
    studies = studies_with_effects(
        {
            "cifar": [2.0, 2.2, 1.8],  # mean 2.0, sd 0.2
            "svhn": [2.1, 1.9, 2.3],  # mean 2.1, sd 0.2
            "digits": [1.8, 2.0, 2.2],  # mean 2.0, sd 0.2
            "mnist": None,
        }
    )
    (stage,) = get_consensus_info(studies)
    assert [(effect.study_name, effect.source, effect.n) for effect in stage.effects] == [
        ("cifar", 0, 3),
        ("svhn", 0, 3),
        ("digits", 0, 3),
    ]
    assert stage.effects[0].standard_error == pytest.approx(0.2 / math.sqrt(3))
    assert stage.left_out == ["mnist: no ablation of this stage"]
    # Q = 75 * ((2 - 2.0333)² * 2 + (2.1 - 2.0333)²) = 0.5 < 2 degrees of freedom: tau² = I² = 0,
    # so the pooled effect is the inverse-variance mean (equal weights 75) with se 1/sqrt(225).
    assert stage.i2 == 0.0 and stage.tau2 == pytest.approx(0.0, abs=1e-9)
    pooled, se = (2.0 + 2.1 + 2.0) / 3, 1 / math.sqrt(3 * 75)
    assert stage.pooled == pytest.approx(pooled)
    # A t quantile with 3 - 1 studies' df, not the normal's 1.96: each standard error comes
    # from 3 seeds, and a normal interval excluded 0 in 12-14% of simulated null poolings.
    assert stage.interval == pytest.approx((pooled - T_975_2 * se, pooled + T_975_2 * se))
    assert stage.agree is True
    assert stage.verdict == (
        "the studies agree (I²=0%): pooled +2.0 points, 95% CI +1.7..+2.3 (3 studies)"
    )
    lines = consensus_lines([stage])
    assert lines[1] == f"  stage 0: {stage.verdict}"
    assert "    cifar (trial #0): +2.0 points, CI +1.5..+2.5, n=3 seeds" in lines
    assert "    left out: mnist: no ablation of this stage" in lines


def test_studies_with_opposite_tight_effects_disagree_with_a_large_i2():
    studies = studies_with_effects({"a": [3.0, 3.1, 2.9], "b": [-3.0, -3.1, -2.9]})
    (stage,) = get_consensus_info(studies, method="dl")
    # Q = 300 * 3² * 2 = 5400 (weights 1/(0.1²/3) = 300), I² = (Q - 1) / Q.
    assert stage.i2 == pytest.approx(5399 / 5400)
    assert stage.agree is False
    assert stage.pooled == pytest.approx(0.0, abs=1e-9)
    assert stage.interval[0] < -2 and stage.interval[1] > 2
    assert stage.verdict.startswith("they disagree (I²=100%): pooled +0.0 points")


def consensus_of_sources(*differences, storage=None, name="s", sources="mean"):
    """One searched study whose ablation flips stage 0 of sources 0, 5, 10, ... with these
    paired differences; its consensus at stage 0."""
    storage = storage or optuna.storages.InMemoryStorage()
    study = ablation_study_of(
        [searched_trial("plain", 0.8, params=1e4)], storage=storage, name=name
    )
    trials = []
    for index, values in enumerate(differences):
        trials += paired(5 * index, 0, ("plain",) * 2, ("mlp", "plain"), values)
    ablation = ablation_study_of(trials, storage=storage, name=f"{name}:ablation")
    (stage,) = get_consensus_info([study], ablation_studies={name: ablation}, sources=sources)
    return study, stage


def test_consensus_checks_its_arguments_and_can_pool_the_mean_of_sources():
    study, stage = consensus_of_sources([1.0, 2.0, 3.0], [3.0, 4.0, 5.0])
    (effect,) = stage.effects
    assert effect.source is None and effect.difference == pytest.approx(3.0)
    assert effect.standard_error == pytest.approx(math.sqrt(2 * (1 / 3)) / 2)
    assert stage.pooled is None and stage.agree is None
    assert stage.verdict == "one study only (s): +3.0 points, n=6"
    with pytest.raises(ValueError, match="sources='all'"):
        get_consensus_info([study], sources="all")
    with pytest.raises(ValueError, match="method='reml'"):
        get_consensus_info([study], method="reml")


def test_consensus_leaves_out_an_ablation_tied_on_every_seed():
    # Zero spread is no standard error: pooled, such an effect would take all the weight.
    _, stage = consensus_of_sources([0.35, 0.35, 0.35], [3.0, 4.0, 5.0])
    (effect,) = stage.effects
    assert effect.difference == pytest.approx(4.0) and effect.n == 3

    _, stage = consensus_of_sources([0.35, 0.35, 0.35], name="t", sources="best")
    assert not stage.effects
    assert stage.verdict == "no study has a flipped ablation with an interval here"
    assert stage.left_out == [
        "t: no flipped ablation with an interval (2 or more seeds whose differences vary)"
    ]


# ----------------------------------------------------------------------------------------------
# The answer in words
# ----------------------------------------------------------------------------------------------


def test_the_answer_gives_numbers_with_intervals_and_says_what_would_settle_it():
    study = confounded_study(mlp_effect=0.02)
    lines = answer_lines(get_answer(study))
    assert lines[0].startswith("Answer: does MLP conv beat plain conv")
    text = "\n".join(lines)
    assert "  stage 0:" in lines and "  stage 1:" in lines
    assert (
        "design space (random trials at epoch 2, weighted to equal params in 8 size bins, "
        "2 dropped (32 trials)): MLP conv helps (+2." in text
    )
    assert "weighted MLP nets have 0.99x the plain nets' params\n" in text  # no "not equal"
    assert "size-adjusted (random trials at epoch 2, accuracy ~ kind + log params, robust " in text
    assert lines[-1].startswith("  5 intervals above, each at 95%: with no effect anywhere, about")
    assert lines[-1].endswith(
        "with Holm's correction for all 5 (family-wise error 5%), 5 still exclude 0: stage 0 "
        "design space, stage 0 size-adjusted, stage 0 small networks, stage 0 medium networks, "
        "stage 0 large networks"
    )
    null_lines = answer_lines(get_answer(confounded_study(mlp_effect=0.0)))
    assert null_lines[-1].endswith(
        "with Holm's correction for all 5 (family-wise error 5%), none excludes 0"
    )
    assert "naive comparison (all completed trials, confounded by sampler and params)" in text
    # A study made in plain Optuna (no config recorded): ablate cannot run it, and says so.
    assert "to settle it: `nin-search ablate` needs a study that `nin-search optimize` created" in (
        text
    )
    assert "only plain conv sampled here (160 trials)" in text  # stage 1 is never searched
    assert "too few trials" not in text


def test_random_trials_that_diverged_before_the_common_epoch_are_counted_and_named():
    plain = [searched_trial("plain", value, params=1e4) for value in (0.70, 0.72, 0.74, 0.71)]
    mlp = [searched_trial("mlp", value, params=1e4) for value in (0.75, 0.77, 0.76)]
    diverged = [
        searched_trial("mlp", None, params=1e4, epochs=0, state=TrialState.PRUNED) for _ in range(2)
    ]
    study = ablation_study_of(plain + mlp + diverged)
    (effect, _) = get_design_space_info(study)
    assert (effect.n_plain, effect.n_mlp) == (4, 3)
    assert (effect.n_left_out_plain, effect.n_left_out_mlp) == (0, 2)
    text = "\n".join(answer_lines(get_answer(study)))
    assert "left out: 2 random trials with no accuracy at epoch 2 (plain 0, mlp 2;" in text


def test_sizes_the_bins_leave_unequal_are_said_to_be_unequal():
    # One bin (under 16 trials): the MLP nets are 4x larger and nothing evens that out.
    trials = [searched_trial("plain", 0.70 + 0.01 * i, params=1e4) for i in range(4)]
    trials += [searched_trial("mlp", 0.75 + 0.01 * i, params=4e4) for i in range(4)]
    study = ablation_study_of(trials)
    (effect, _) = get_design_space_info(study)
    assert effect.size_ratio == pytest.approx(4.0)
    text = "\n".join(answer_lines(get_answer(study)))
    assert (
        "weighted MLP nets have 4.00x the plain nets' params (not equal: the size bins are too "
        "coarse for these trials)" in text
    )


def test_with_little_data_the_answer_is_a_wide_interval_and_a_way_to_narrow_it():
    study = ablation_study_of(
        [
            searched_trial("plain", 0.70, params=1e4),
            searched_trial("plain", 0.74, params=1e4),
            searched_trial("mlp", 0.71, params=1e4),
            searched_trial("mlp", 0.77, params=1e4),
        ]
    )
    ablation = ablation_study_of(paired(1, 0, ("plain",) * 2, ("mlp", "plain"), [1.5]))
    answer = get_answer(study, ablation)
    (stage, _) = answer.stages
    assert stage.design_space.difference == pytest.approx(2.0)
    assert stage.design_space.interval is not None
    lines = answer_lines(answer)
    text = "\n".join(lines)
    assert "no effect detected: difference +2.0 points, 95% CI" in text
    assert "(plain n=2, mlp n=2)" in text
    assert "run more random trials (`study.random_trials`): about" in text
    assert "ablation of trial #1: flipped: unsure: difference +1.5 points, no interval" in text
    assert (
        "to settle it: flipped (trial #1): `nin-search ablate --seeds 3` gives an interval" in text
    )
    assert "too few trials" not in text


def test_the_answer_checks_its_arguments():
    with pytest.raises(ValueError, match="smallest_effect=0"):
        get_answer(optuna.create_study(), smallest_effect=0)
    with pytest.raises(ValueError, match="confidence=2"):
        get_ablation_info(optuna.create_study(), confidence=2)
    with pytest.raises(ValueError, match="confidence=0"):
        get_answer(optuna.create_study(), confidence=0)
    with pytest.raises(ValueError, match="confidence=1"):
        get_design_space_info(optuna.create_study(), confidence=1)
    assert answer_lines(get_answer(optuna.create_study(study_name="empty")))[1] == (
        "  no finished trials yet: run `nin-search optimize`"
    )


def test_the_statistics_refuse_impossible_inputs_and_quote_them():
    with pytest.raises(ValueError, match=r"params=\[1000.0, 0.0\]"):
        normalised_difference([1.0, 2.0], [1000.0, 0.0], [False, True])
    with pytest.raises(ValueError, match="lengths 2, 1 and 2"):
        normalised_difference([1.0, 2.0], [1000.0], [False, True])
    with pytest.raises(ValueError, match="confidence=0"):
        normalised_difference([1.0, 2.0], [1e3, 1e3], [False, True], confidence=0)
    one_kind = normalised_difference([1.0, 2.0], [1e3, 1e3], [True, True])
    assert one_kind.difference is None and one_kind.trials_dropped == 2


def test_the_analysis_reads_trials_and_never_imports_report_training_or_torch():
    import ast
    from pathlib import Path

    import nin_search.analysis

    forbidden = ("nin_search.report", "nin_search.train", "nin_search.objective", "torch")
    for path in Path(nin_search.analysis.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"


def test_the_interval_ignores_what_a_size_bin_adds_to_both_kinds_and_follows_an_mlp_shift():
    params = [1e3] * 8 + [1e5] * 8
    is_mlp = [False, True] * 8
    values = np.array([50.0, 53.0, 52.0, 54.0, 49.0, 55.0, 51.0, 52.0] * 2)
    base = normalised_difference(values, params, is_mlp)
    assert base.bins_used == 2 and base.interval is not None
    lifted = values + np.array([0.0] * 8 + [30.0] * 8)  # large nets 30 points better, both kinds
    same = normalised_difference(lifted, params, is_mlp)
    assert same.difference == pytest.approx(base.difference)
    assert same.interval == pytest.approx(base.interval)
    shifted = normalised_difference(values + 2.0 * np.array(is_mlp), params, is_mlp)
    assert shifted.difference == pytest.approx(base.difference + 2.0)
    assert shifted.interval == pytest.approx((base.interval[0] + 2.0, base.interval[1] + 2.0))


def test_trials_that_do_not_say_how_they_were_sampled_are_counted_not_called_older():
    from nin_search import presets, records

    def objective(trial: optuna.Trial) -> float:  # a plugin-API trial: no `sampled_by`
        trial.set_user_attr(records.ARCH, presets.plain_cifar10().to_dict())
        return 0.5

    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=2)
    text = "\n".join(answer_lines(get_answer(study, None)))
    assert (
        "none recorded for this stage yet (2 trial(s) do not record how they were sampled" in text
    )
    assert "older trials lack" not in text


def test_holm_keeps_only_what_survives_the_step_down_and_p_values_agree_with_the_intervals():
    from nin_search.analysis._answer import _many_intervals_line
    from nin_search.analysis._stats import holm_rejections

    # 0.01 <= 0.05/5 is kept; then 0.04 > 0.05/4 stops the step-down (Bonferroni-Holm).
    assert holm_rejections([0.2, 0.01, 0.3, 0.04, 0.5], 0.05) == [False, True, False, False, False]
    line = _many_intervals_line([("a", 0.2), ("b", 0.01), ("c", 0.04)], 0.95)
    assert line.endswith("(family-wise error 5%), 1 still excludes 0: b")
    # Every p-value the correction uses is the test of its interval: below 0.05 exactly when
    # the 95% interval excludes 0.
    answer = get_answer(confounded_study(mlp_effect=0.02))
    design = answer.stages[0].design_space
    shown = [design, design.adjusted, *design.regimes]
    assert len(_interval_tests(answer)) == len(shown)
    for effect in shown:
        low, high = effect.interval
        assert (effect.p_value < 0.05) == (low > 0 or high < 0)


def test_the_commands_the_answer_suggests_name_the_study_s_storage_and_name():
    from nin_search.compat import set_study_system_attr
    from nin_search.records import CONFIG, system_attr_key
    from nin_search.storage_messages import study_options

    study = confounded_study(mlp_effect=0.0)
    set_study_system_attr(study, system_attr_key(CONFIG), {"study": {"name": "x"}})  # optimize's
    where = study_options("sqlite:///my runs/x.db", "x y")
    assert where == "--storage 'sqlite:///my runs/x.db' --study-name 'x y'"  # quoted for a shell
    text = "\n".join(answer_lines(get_answer(study, where=where)))
    assert f"to settle it: no ablation yet: run `nin-search ablate {where}`" in text
    assert "--storage 'postgresql://u:***@h/d'" in study_options("postgresql://u:pw@h/d", "s")


@pytest.mark.parametrize("older", [False, True], ids=["not trained", "trained twice (older)"])
def test_a_flipped_network_with_the_original_s_params_is_read_as_the_matched_one(older):
    kinds, flipped_kinds = ("mlp", "plain"), ("plain", "plain")
    trials = []
    for seed, accuracy in enumerate((0.78, 0.80, 0.77), start=1):
        trials.append(ablation_trial(3, 0, "original", seed, kinds, 0.80, params=20000))
        flipped = ablation_trial(3, 0, "flipped", seed, flipped_kinds, accuracy, params=19800)
        if older:  # the same network again, under the matched name
            trials.append(
                ablation_trial(3, 0, "matched", seed, flipped_kinds, accuracy, params=19800)
            )
        else:  # what ablate writes on a flipped run that is also the matched one
            flipped.set_user_attr(records.ABLATION_ALSO_MATCHED, True)
        trials.append(flipped)
    (ablation,) = get_ablation_info(ablation_study_of(trials))
    assert ablation.matched_is_flipped and ablation.matched == ablation.flipped
    assert ablation.distinct_effects() == [ablation.flipped]
    answer = get_answer(confounded_study(mlp_effect=0.0), ablation_study_of(trials))
    text = "\n".join(answer_lines(answer))
    assert "matched: the flipped network itself (its params within 5% of the original's)" in text
    assert "to settle it: matched" not in text  # one comparison, one line
    assert sum(label.startswith("stage 0 flipped") for label, _ in _interval_tests(answer)) == 1
    assert not any(label.startswith("stage 0 matched") for label, _ in _interval_tests(answer))


def test_flipped_runs_without_their_matched_ones_yet_are_not_taken_for_them():
    # An ablation under way: the flipped runs are done, the matched ones not (the flipped
    # network is within 5% of the original's params, but ablate did not mark it as matched).
    kinds, flipped_kinds = ("mlp", "plain"), ("plain", "plain")
    trials = []
    for seed in (1, 2, 3):
        trials.append(ablation_trial(3, 0, "original", seed, kinds, 0.80, params=20000))
        trials.append(ablation_trial(3, 0, "flipped", seed, flipped_kinds, 0.79, params=19800))
    (ablation,) = get_ablation_info(ablation_study_of(trials))
    assert not ablation.matched_is_flipped and ablation.matched is None
