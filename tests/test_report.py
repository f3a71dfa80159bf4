import dataclasses
import html
import math
import re

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from nin_search import report
from nin_search.report import (
    AccuracyGroup,
    BestArchitecture,
    BestStageRow,
    EqualEpochComparison,
    MlpDepthInfo,
    MlpWidthInfo,
    get_best_architecture_table,
    get_cost_info,
    get_mlp_depth_info,
    get_mlp_width_info,
    get_stage_verdicts,
    verdict_lines,
    write_report,
)
from nin_search.spec import ArchSpec, StageSpec

WIDTHS = [16, 32, 64]


def stage_spec(kind, *, mlp_widths=(16,), kernel_size=3, width=32, pool="max"):
    if kind == "plain":
        mlp_widths = ()
    return StageSpec(kind, kernel_size=kernel_size, width=width, mlp_widths=mlp_widths, pool=pool)


def arch_of(stages):
    """The spec of ``stages``; the last stage never downsamples."""
    return ArchSpec(stages=(*stages[:-1], dataclasses.replace(stages[-1], pool="none")))


def trial_for(
    stages,
    value,
    *,
    state=TrialState.COMPLETE,
    intermediate_values=None,
    cost=None,
    baseline=None,
    with_arch=True,
):
    """A trial with params and user attrs as the objective would store them."""
    arch = arch_of(stages)
    params, distributions = {}, {}

    def put(name, value, distribution):
        params[name] = value
        distributions[name] = distribution

    for index, stage in enumerate(arch.stages):
        put(f"s{index}_type", stage.kind, CategoricalDistribution(["plain", "mlp"]))
        put(f"s{index}_kernel_size", stage.kernel_size, CategoricalDistribution([3, 5]))
        put(f"s{index}_width", stage.width, CategoricalDistribution(WIDTHS))
        if stage.kind == "mlp":
            put(f"s{index}_mlp_depth", len(stage.mlp_widths), IntDistribution(1, 3))
            for layer, width in enumerate(stage.mlp_widths, start=1):
                put(f"s{index}_mlp{layer}_width", width, CategoricalDistribution(WIDTHS))
        if index < len(arch.stages) - 1:
            put(f"s{index}_pool", stage.pool, CategoricalDistribution(["max", "avg", "none"]))
    put("learning_rate", 0.05, FloatDistribution(1e-3, 1.0, log=True))
    user_attrs = {"arch_summary": arch.summary(), "params": 1000, "macs": 10000, "seed": 0}
    if with_arch:
        user_attrs["arch"] = arch.to_dict()
    if cost is not None:
        user_attrs["params"], user_attrs["macs"] = cost
    if baseline is not None:
        user_attrs["baseline"] = baseline
    return create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params=params,
        distributions=distributions,
        user_attrs=user_attrs,
        intermediate_values=intermediate_values or {},
    )


def study_of(trials, name=None):
    study = optuna.create_study(direction="maximize", study_name=name)
    for trial in trials:
        study.add_trial(trial)
    return study


def effect_study(mlp_mean, plain_mean, *, n=15, noise=0.01, seed=1):
    generator = np.random.default_rng(seed)
    trials = []
    for kind, mean in (("mlp", mlp_mean), ("plain", plain_mean)):
        for _ in range(n):
            value = float(mean + noise * generator.standard_normal())
            trials.append(trial_for([stage_spec(kind)], value))
    return study_of(trials)


def test_a_clearly_better_mlp_stage_gets_helps_with_an_interval_above_zero():
    (verdict,) = get_stage_verdicts(effect_study(0.9, 0.8))
    assert verdict.verdict == "MLP conv helps"
    assert (verdict.n_plain, verdict.n_mlp) == (15, 15)
    assert verdict.confidence_interval[0] > 0
    assert verdict.confidence_interval[0] < verdict.difference < verdict.confidence_interval[1]
    assert verdict.difference == pytest.approx(verdict.mlp_mean - verdict.plain_mean)
    assert verdict.difference == pytest.approx(0.1, abs=0.02)


def test_a_clearly_worse_mlp_stage_gets_hurts_with_an_interval_below_zero():
    (verdict,) = get_stage_verdicts(effect_study(0.8, 0.9))
    assert verdict.verdict == "MLP conv hurts"
    assert verdict.confidence_interval[1] < 0


def test_identical_accuracies_give_no_effect_detected():
    values = [0.80, 0.82, 0.79, 0.85, 0.81, 0.78]
    trials = [trial_for([stage_spec(kind)], value) for kind in ("plain", "mlp") for value in values]
    (verdict,) = get_stage_verdicts(study_of(trials))
    assert verdict.verdict == "no effect detected"
    low, high = verdict.confidence_interval
    assert low < 0 < high
    assert verdict.difference == pytest.approx(0.0)


def test_two_trials_a_type_are_too_few_to_tell():
    trials = [trial_for([stage_spec(kind)], 0.8) for kind in ("plain", "plain", "mlp", "mlp")]
    (verdict,) = get_stage_verdicts(study_of(trials))
    assert verdict.verdict == "too few trials"
    assert verdict.confidence_interval is None
    assert verdict.difference == pytest.approx(0.0)


def test_the_verdicts_check_their_arguments():
    study = effect_study(0.9, 0.8)
    with pytest.raises(ValueError, match="confidence=1.5"):
        get_stage_verdicts(study, confidence=1.5)
    with pytest.raises(ValueError, match="min_trials=0"):
        get_stage_verdicts(study, min_trials=0)


def test_pruned_trials_are_compared_at_the_largest_epoch_every_finished_trial_reached():
    plain, mlp = [stage_spec("plain")], [stage_spec("mlp")]
    trials = [
        trial_for(plain, 0.80, intermediate_values={1: 0.5, 2: 0.6, 3: 0.8}),
        trial_for(plain, 0.70, intermediate_values={1: 0.4, 2: 0.5, 3: 0.7}),
        trial_for(mlp, 0.90, intermediate_values={1: 0.6, 2: 0.7, 3: 0.9}),
        trial_for(mlp, None, state=TrialState.PRUNED, intermediate_values={1: 0.2, 2: 0.3}),
        # Never reported, so it cannot be compared at any epoch.
        trial_for(mlp, None, state=TrialState.PRUNED),
        trial_for(plain, None, state=TrialState.FAIL, intermediate_values={1: 0.0}),
    ]
    (verdict,) = get_stage_verdicts(study_of(trials))
    assert verdict.equal_epoch == EqualEpochComparison(
        epoch=2,
        plain_mean=pytest.approx(0.55),
        mlp_mean=pytest.approx(0.5),
        n_plain=2,
        n_mlp=2,
        n_pruned=1,
    )
    # The verdict itself only counts completed trials.
    assert (verdict.n_plain, verdict.n_mlp) == (2, 1)
    assert verdict.mlp_accuracies == [0.9]


def test_stage_types_come_from_the_arch_attr_or_else_from_params():
    two_stages = [stage_spec("mlp"), stage_spec("plain")]
    from_params = trial_for(two_stages, 0.7, with_arch=False)
    # A fixed space: no stage params at all, only the arch attr.
    fixed_space = create_trial(
        value=0.9,
        params={"learning_rate": 0.05},
        distributions={"learning_rate": FloatDistribution(1e-3, 1.0, log=True)},
        user_attrs={"arch": arch_of(two_stages).to_dict()},
    )
    verdicts = get_stage_verdicts(study_of([from_params, fixed_space]))
    assert [(v.stage, v.plain_accuracies, v.mlp_accuracies) for v in verdicts] == [
        (0, [], [0.7, 0.9]),
        (1, [0.7, 0.9], []),
    ]


def test_depth_and_width_group_completed_accuracies_per_stage():
    trials = [
        trial_for([stage_spec("plain"), stage_spec("plain")], 0.6),
        trial_for([stage_spec("mlp", mlp_widths=(16,)), stage_spec("plain")], 0.7),
        trial_for([stage_spec("mlp", mlp_widths=(32, 16)), stage_spec("plain")], 0.8),
        trial_for([stage_spec("mlp", mlp_widths=(16, 16)), stage_spec("mlp")], 0.9),
        trial_for([stage_spec("mlp")], None, state=TrialState.PRUNED),
    ]
    study = study_of(trials)
    assert get_mlp_depth_info(study) == [
        MlpDepthInfo(
            stage=0,
            groups=[
                AccuracyGroup(0, 1, 0.6, [0.6]),
                AccuracyGroup(1, 1, 0.7, [0.7]),
                AccuracyGroup(2, 2, pytest.approx(0.85), [0.8, 0.9]),
            ],
        ),
        MlpDepthInfo(
            stage=1,
            groups=[
                AccuracyGroup(0, 3, pytest.approx(0.7), [0.6, 0.7, 0.8]),
                AccuracyGroup(1, 1, 0.9, [0.9]),
            ],
        ),
    ]
    assert get_mlp_width_info(study) == [
        MlpWidthInfo(
            0,
            1,
            [
                AccuracyGroup(16, 2, pytest.approx(0.8), [0.7, 0.9]),
                AccuracyGroup(32, 1, 0.8, [0.8]),
            ],
        ),
        MlpWidthInfo(0, 2, [AccuracyGroup(16, 2, pytest.approx(0.85), [0.8, 0.9])]),
        MlpWidthInfo(1, 1, [AccuracyGroup(16, 1, 0.9, [0.9])]),
    ]


def cost_study():
    stages = [stage_spec("mlp")]
    return study_of(
        [
            trial_for(stages, 0.70, cost=(100, 9000)),  # 0: cheapest params
            trial_for(stages, 0.80, cost=(200, 1000), baseline="plain"),  # 1: cheapest macs
            trial_for(stages, 0.75, cost=(300, 5000)),  # 2: dominated by 1 on both
            trial_for(stages, 0.90, cost=(400, 8000), baseline="nin"),  # 3: best accuracy
            trial_for(stages, 0.90, cost=(500, 8500)),  # 4: ties 3 on accuracy, costs more
            trial_for(stages, None, state=TrialState.PRUNED, cost=(10, 10)),
        ]
    )


def test_cost_info_lists_completed_trials_and_their_pareto_fronts():
    info = get_cost_info(cost_study())
    assert [(p.number, p.accuracy, p.params, p.macs, p.baseline) for p in info.points] == [
        (0, 0.70, 100, 9000, None),
        (1, 0.80, 200, 1000, "plain"),
        (2, 0.75, 300, 5000, None),
        (3, 0.90, 400, 8000, "nin"),
        (4, 0.90, 500, 8500, None),
    ]
    assert info.params_front == [0, 1, 3]
    assert info.macs_front == [1, 3]
    assert {2, 4}.isdisjoint(info.params_front + info.macs_front)


def test_cost_figures_mark_the_front_and_label_the_baselines_on_a_log_axis():
    figure = report.plot_cost(get_cost_info(cost_study()), cost="macs")
    traces = {trace.name: trace for trace in figure.data}
    assert list(traces["front: accuracy vs macs"].x) == [1000, 8000]
    assert list(traces["nin baseline"].text) == ["nin baseline"]
    assert traces["nin baseline"].marker.symbol != traces["plain baseline"].marker.symbol
    # Labels on different sides of their markers, so that close baselines' labels never collide.
    assert traces["nin baseline"].textposition != traces["plain baseline"].textposition
    assert figure.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="cost=.flops."):
        report.plot_cost(get_cost_info(cost_study()), cost="flops")


def test_best_architecture_table_lists_the_best_trials_stages():
    best = [
        stage_spec("mlp", kernel_size=5, width=64, mlp_widths=(32, 16), pool="avg"),
        stage_spec("plain", width=16),
    ]
    study = study_of(
        [trial_for([stage_spec("plain")], 0.5), trial_for(best, 0.9, cost=(1234, 56789))]
    )
    assert get_best_architecture_table(study) == BestArchitecture(
        number=1,
        accuracy=0.9,
        params=1234,
        macs=56789,
        arch_summary="mlp5x5-64-32-16/avg > plain3x3-16 | nin, bn, relu",
        rows=[
            BestStageRow(0, "mlp", 5, 64, (32, 16), "avg"),
            BestStageRow(1, "plain", 3, 16, (), "none"),
        ],
    )
    assert get_best_architecture_table(study_of([])) is None


def test_verdict_lines_read_as_sentences():
    verdicts = get_stage_verdicts(effect_study(0.9, 0.8))
    low, high = (bound * 100 for bound in verdicts[0].confidence_interval)
    difference = verdicts[0].difference * 100
    assert verdict_lines(verdicts) == [
        f"stage 0: MLP conv helps ({difference:+.1f} points, 95% CI {low:+.1f}..{high:+.1f}, "
        "plain n=15, mlp n=15)"
    ]
    few = get_stage_verdicts(
        study_of([trial_for([stage_spec("mlp")], 0.8), trial_for([stage_spec("plain")], 0.7)])
    )
    assert verdict_lines(few) == [
        "stage 0: unsure: difference +10.0 points, no interval (plain n=1, mlp n=1; an interval "
        "needs 5 of each)"
    ]
    alone = get_stage_verdicts(study_of([trial_for([stage_spec("mlp")], 0.8)]))
    assert verdict_lines(alone) == [
        "stage 0: nothing to compare: only MLP conv (plain n=0, mlp n=1)"
    ]


PLOTLY_JS_MARKER = "plotly.js v"


def test_write_report_is_one_offline_html_file_with_verdicts_and_figures(tmp_path):
    study = effect_study(0.9, 0.8, n=6)
    study.add_trial(
        trial_for(
            [stage_spec("plain")], None, state=TrialState.PRUNED, intermediate_values={1: 0.3}
        )
    )
    path = tmp_path / "report.html"
    verdicts = write_report(study, path)
    text = path.read_text(encoding="utf-8")
    assert verdicts[0].verdict == "MLP conv helps"
    assert path.stat().st_size > 1_000_000
    assert PLOTLY_JS_MARKER in text
    assert re.search(r"<script[^>]*\bsrc=", text) is None  # nothing loaded from the network
    assert "MLP conv helps" in text
    order = [
        "figure-verdicts",
        "figure-depth",
        "figure-width",
        "figure-cost-params",
        "figure-cost-macs",
        "figure-history",
        "figure-intermediate-values",
        "figure-importances",
        "Best architecture",
    ]
    positions = [
        text.index(f'id="{name}"' if name.startswith("figure") else name) for name in order
    ]
    assert positions == sorted(positions)


def test_write_report_says_so_when_no_trial_has_completed(tmp_path):
    study = study_of([trial_for([stage_spec("mlp")], None, state=TrialState.PRUNED)])
    path = tmp_path / "report.html"
    assert write_report(study, path)[0].verdict.startswith("too few trials")
    text = path.read_text(encoding="utf-8")
    assert "no completed trials yet" in text
    assert PLOTLY_JS_MARKER in text

    empty = tmp_path / "empty.html"
    assert write_report(study_of([]), empty) == []
    assert "no completed trials yet" in empty.read_text(encoding="utf-8")


def test_write_report_renders_a_study_with_only_a_few_trials(tmp_path):
    study = study_of([trial_for([stage_spec("mlp")], 0.8), trial_for([stage_spec("plain")], 0.7)])
    path = tmp_path / "report.html"
    write_report(study, path)
    assert "unsure: difference +10.0 points, no interval (plain n=1, mlp n=1" in path.read_text(
        encoding="utf-8"
    )


def test_importances_show_a_note_instead_of_raising(monkeypatch):
    from nin_search.report import _plot

    def broken(study):
        raise RuntimeError("not enough trials")

    monkeypatch.setattr(_plot, "_importance_study", broken)
    figure = report.plot_param_importances(effect_study(0.9, 0.8, n=2))
    assert "not enough trials" in figure.layout.annotations[0].text


def test_user_text_in_the_report_is_escaped(tmp_path):
    study = study_of([trial_for([stage_spec("mlp")], 0.8)], name="<script>alert(1)</script>")
    path = tmp_path / "report.html"
    write_report(study, path)
    text = path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_non_finite_values_are_left_out():
    trials = [trial_for([stage_spec("mlp")], 0.8), trial_for([stage_spec("mlp")], math.inf)]
    study = study_of(trials)
    assert get_stage_verdicts(study)[0].mlp_accuracies == [0.8]
    assert [point.number for point in get_cost_info(study).points] == [0]


# ----------------------------------------------------------------------------------------------
# The answer and its figures (synthetic studies from test_analysis, whose truth is known)
# ----------------------------------------------------------------------------------------------


def test_the_report_opens_with_the_answer_and_finds_the_ablation_study_itself(tmp_path):
    from nin_search import records
    from nin_search.analysis import answer_lines, find_ablation_study, get_answer

    from .test_analysis import ablation_study_of, confounded_study, paired

    storage = optuna.storages.InMemoryStorage()
    study = confounded_study(mlp_effect=0.02, storage=storage, name="cifar")
    flipped = paired(3, 0, ("plain", "plain"), ("mlp", "plain"), [2.0, 2.2, 1.8])
    ablation_study_of(flipped, storage=storage, name=records.ablation_study_name("cifar"))
    path = tmp_path / "report.html"
    write_report(study, path)
    text = path.read_text(encoding="utf-8")
    expected = answer_lines(get_answer(study, find_ablation_study(study)))
    assert html.escape("\n".join(expected)) in text
    assert "ablation of trial #3: flipped: MLP conv helps (+2.0 points" in text
    order = [
        "<h2>Answer</h2>",
        'id="figure-ablation-forest"',
        'id="figure-edf-stage-0"',
        'id="figure-regime"',
        "Naive comparison",
        'id="figure-verdicts"',
        "Best architecture",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "no ablation yet" not in text


def test_without_an_ablation_study_the_report_says_to_run_ablate(tmp_path):
    from .test_analysis import confounded_study

    path = tmp_path / "report.html"
    write_report(confounded_study(mlp_effect=0.0), path)
    text = path.read_text(encoding="utf-8")
    assert "no ablation yet: run `nin-search ablate`" in text
    assert "no ablation yet: run <code>nin-search ablate</code>" in text


def test_the_edf_figure_draws_the_weighted_curves_of_both_kinds():
    from nin_search.analysis import get_design_space_info

    from .test_analysis import confounded_study

    effect = get_design_space_info(confounded_study(mlp_effect=0.02))[0]
    figure = report.plot_design_space_edf(effect)
    assert [trace.name for trace in figure.data] == [
        f"plain conv (n={effect.n_plain})",
        f"MLP conv (n={effect.n_mlp})",
    ]
    for trace, curve in zip(figure.data, effect.curves, strict=True):
        assert list(trace.x) == curve.errors and list(trace.y) == curve.cumulative_share
    assert figure.layout.title.text.startswith("Stage 0: error EDF of random trials at epoch 2")
    # The steps at either end stand clear of the borders; the verdict covers no curve.
    low, high = figure.layout.xaxis.range
    errors = [error for curve in effect.curves for error in curve.errors]
    assert low < min(errors) and high > max(errors)
    assert not figure.layout.annotations and effect.verdict in figure.layout.title.text
    # Stage 1 never had an MLP conv: the figure says why it is empty.
    empty = report.plot_design_space_edf(get_design_space_info(confounded_study(mlp_effect=0))[1])
    assert "both kinds" in empty.layout.annotations[0].text
    none = effect._replace(n_random_plain=0, n_random_mlp=0, epoch=None, curves=[])
    empty = report.plot_design_space_edf(none)
    assert "final values" not in empty.layout.title.text
    assert "no random trials" in empty.layout.annotations[0].text


def test_the_ablation_forest_plot_shows_each_mean_with_its_interval():
    from nin_search.analysis import get_ablation_info

    from .test_analysis import hand_made_ablation

    ablations = get_ablation_info(hand_made_ablation())
    figure = report.plot_ablation_forest(ablations)
    flipped, matched, matched_one_seed = figure.data
    assert list(figure.layout.yaxis.ticktext) == [
        "stage 0, trial #7 (n=3)",
        "stage 0, trial #9 (flipped n=2, matched n=1)",
    ]
    assert list(flipped.x) == pytest.approx([2.0, 1.5])
    low, high = ablations[0].flipped.interval
    assert flipped.error_x.array[0] == pytest.approx(high - 2.0)
    assert flipped.error_x.arrayminus[0] == pytest.approx(2.0 - low)
    # Flipped and matched of one row sit apart, so equal values never hide a marker.
    assert flipped.y[0] != matched.y[0] and round(flipped.y[0]) == round(matched.y[0]) == 0
    # One seed: an open marker with no bar (not a bar of width 0), named in the legend.
    assert matched_one_seed.name == "matched, 1 seed: no interval"
    assert matched_one_seed.marker.symbol == "circle-open" and not matched_one_seed.error_x.array
    assert "open markers: 1 seed, no interval" in figure.layout.title.text
    assert "no ablation yet" in report.plot_ablation_forest([]).layout.annotations[0].text


def test_an_ablation_of_one_seed_is_not_titled_as_intervals():
    from nin_search.analysis import get_ablation_info

    from .test_analysis import hand_made_ablation

    nine = get_ablation_info(hand_made_ablation())[1]
    one_seed = nine._replace(flipped=nine.matched._replace(variant="flipped"))
    figure = report.plot_ablation_forest([one_seed])
    assert "t-intervals" not in figure.layout.title.text
    assert "1 seed each: no intervals" in figure.layout.title.text
    assert all(trace.marker.symbol == "circle-open" for trace in figure.data)
    assert {trace.x[0] for trace in figure.data} == {nine.matched.mean}  # equal, both drawn
    assert len({trace.y[0] for trace in figure.data}) == 2


def test_the_regime_figure_has_one_point_per_size_range_and_stage():
    from nin_search.analysis import get_design_space_info, size_label

    from .test_analysis import size_study

    effects = get_design_space_info(size_study(small_effect=0.03))
    figure = report.plot_regime(effects)
    (trace,) = figure.data  # stage 1 has no MLP conv, so no sizes to compare
    assert trace.name == "stage 0"
    assert list(trace.y) == pytest.approx([regime.difference for regime in effects[0].regimes])
    assert list(trace.x) == [0, 1, 2]
    ticks = list(figure.layout.xaxis.ticktext)
    assert ticks == [size_label(regime) for regime in effects[0].regimes]
    assert ticks[0].startswith("small (<")
    assert figure.layout.xaxis.title.text.startswith("network size")


def test_the_regime_figure_sets_stages_apart_and_draws_no_interval_as_no_bar():
    from nin_search.analysis import get_design_space_info

    from .test_analysis import size_study

    stage0 = get_design_space_info(size_study(small_effect=0.03))[0]
    small, *others = stage0.regimes
    stage1 = stage0._replace(stage=1, regimes=[small._replace(interval=None), *others])
    figure = report.plot_regime([stage0, stage1])
    zero, one, one_open = figure.data
    assert (zero.name, one.name) == ("stage 0", "stage 1")
    assert set(zero.x).isdisjoint(one.x) and set(zero.x).isdisjoint(one_open.x)
    assert sorted(round(x) for x in (*zero.x, *one.x, *one_open.x)) == [0, 0, 1, 1, 2, 2]
    assert one_open.name == "stage 1, no interval (too few of one kind)"
    assert one_open.marker.symbol == "circle-open" and not one_open.error_y.array
    assert list(one_open.y) == pytest.approx([small.difference])


def test_the_consensus_report_pools_studies_in_one_storage(tmp_path):
    from .test_analysis import studies_with_effects

    studies = studies_with_effects({"a": [3.0, 3.1, 2.9], "b": [-3.0, -3.1, -2.9], "c": None})
    path = tmp_path / "consensus.html"
    (stage,) = report.write_consensus_report(studies, path)
    assert stage.agree is False
    text = path.read_text(encoding="utf-8")
    assert "they disagree (I²=100%)" in text
    assert 'id="figure-consensus-stage-0"' in text
    assert "left out: c: no ablation of this stage" in text
    assert text.count("Answer: does MLP conv beat plain conv") == 3
    figure = report.plot_consensus_forest(stage)
    studies_trace, pooled = figure.data
    assert list(studies_trace.y) == ["a (n=3)", "b (n=3)"]
    low, high = stage.effects[0].interval  # each study's bar is its own 3-seed t-interval
    assert studies_trace.error_x.array[0] == pytest.approx(high - stage.effects[0].difference)
    assert studies_trace.error_x.arrayminus[0] == pytest.approx(stage.effects[0].difference - low)
    assert list(pooled.y) == ["pooled (random effects)"] and pooled.marker.symbol == "diamond"


def latency_study():
    """Two objectives, accuracy and latency_ms: trials 0 and 2 form the front."""
    from nin_search.compat import set_study_system_attr
    from nin_search.records import CONFIG, system_attr_key

    study = optuna.create_study(directions=["maximize", "minimize"])
    # The names come from the config optimize records (Optuna's metric names are unset).
    set_study_system_attr(
        study, system_attr_key(CONFIG), {"study": {"objectives": ["accuracy", "latency_ms"]}}
    )
    for accuracy, latency in ((0.80, 0.5), (0.85, 2.0), (0.90, 1.0)):
        trial = trial_for([stage_spec("mlp")], accuracy)
        study.add_trial(
            create_trial(
                values=[accuracy, latency],
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={**trial.user_attrs, "latency_ms": latency},
            )
        )
    return study


def test_a_multi_objective_report_names_its_objectives_and_lists_the_pareto_front(tmp_path):
    study = latency_study()
    objectives = report.get_objectives_info(study)
    assert objectives.names == ["accuracy", "latency_ms"]
    assert objectives.directions == ["maximize", "minimize"]
    assert [trial.number for trial in objectives.front] == [2, 0]  # most accurate first
    assert objectives.front[0].values == [0.90, 1.0]
    assert report.get_objectives_info(effect_study(0.9, 0.8)) is None
    path = tmp_path / "report.html"
    write_report(study, path)
    text = path.read_text(encoding="utf-8")
    assert "Objectives: accuracy (maximize), latency_ms (minimize)" in text
    front = text[text.index('id="pareto-front"') : text.index("<h2>Best architecture</h2>")]
    assert "<td>90.0%</td><td>1.000 ms</td>" in front and "<td>80.0%</td><td>0.500 ms</td>" in front
    assert "<td>85.0%</td>" not in front  # trial 1 is dominated by trial 2
    assert "Trial 2: the most accurate trial of the Pareto front" in text
    # Accuracy against each objective the study has: latency too, with its own front.
    assert 'id="figure-cost-latency"' in text
    figure = report.plot_cost(get_cost_info(study), cost="latency_ms")
    front_trace = next(
        trace for trace in figure.data if trace.name == "front: accuracy vs latency_ms"
    )
    assert list(front_trace.x) == [0.5, 1.0]


def test_a_single_objective_report_has_no_pareto_front_or_latency_figure(tmp_path):
    path = tmp_path / "report.html"
    write_report(effect_study(0.9, 0.8), path)
    text = path.read_text(encoding="utf-8")
    assert "Objectives:" not in text and 'id="pareto-front"' not in text
    assert 'id="figure-cost-latency"' not in text


def many_params_study(n_params=28, n_trials=20, seed=0):
    generator = np.random.default_rng(seed)
    study = optuna.create_study(direction="maximize")
    distribution = FloatDistribution(0.0, 1.0)
    for _ in range(n_trials):
        params = {f"p{index:02d}": float(generator.uniform()) for index in range(n_params)}
        study.add_trial(
            create_trial(
                value=float(generator.uniform()),
                params=params,
                distributions=dict.fromkeys(params, distribution),
            )
        )
    study.add_trial(create_trial(state=TrialState.PRUNED, params={}, distributions={}))
    return study


def test_importances_label_every_bar_and_say_how_many_trials_they_rest_on():
    figure = report.plot_param_importances(many_params_study())
    (bars,) = figure.data
    assert len(bars.y) == 28
    assert list(figure.layout.yaxis.tickvals) == list(bars.y)  # no label skipped
    assert figure.layout.height >= 28 * 20  # tall enough for 28 labelled bars
    assert "from 20 completed trials" in figure.layout.title.text
    small = report.plot_param_importances(many_params_study(n_params=3))
    assert small.layout.height < figure.layout.height


def test_the_importance_warning_sits_under_the_title_not_on_the_axis_title(monkeypatch):
    import warnings

    from nin_search.report import _plot

    original = _plot._importance_study

    def warning(study):
        warnings.warn("Some regimes have less than 2 trials.", UserWarning, stacklevel=1)
        return original(study)

    monkeypatch.setattr(_plot, "_importance_study", warning)
    figure = report.plot_param_importances(many_params_study(n_params=3))
    assert "note: Some regimes have less than 2 trials." in figure.layout.title.text
    assert not figure.layout.annotations


def test_a_consensus_of_one_study_is_that_studys_full_report(tmp_path):
    from .test_analysis import studies_with_effects

    (study,) = studies_with_effects({"a": [3.0, 3.1, 2.9]})
    path = tmp_path / "consensus.html"
    report.write_consensus_report([study], path)
    text = path.read_text(encoding="utf-8")
    assert "<h1>nin-search report: a</h1>" in text
    assert "One searched study only, so this is its full report" in text
    assert "Naive comparison: every completed trial, per stage" in text
    assert 'id="figure-ablation-forest"' in text and "Consensus across studies" not in text


def test_a_stage_with_one_kind_only_says_there_is_nothing_to_compare():
    from nin_search.report import StageVerdict, verdict_lines

    only_plain = StageVerdict(
        stage=1, plain_accuracies=[0.9, 0.8, 0.85], mlp_accuracies=[], n_plain=3, n_mlp=0,
        plain_mean=0.85, mlp_mean=None, difference=None, confidence_interval=None,
        confidence=0.95, min_trials=5, verdict="no data", equal_epoch=None,
    )  # fmt: skip
    assert verdict_lines([only_plain]) == [
        "stage 1: nothing to compare: only plain conv (plain n=3, mlp n=0)"
    ]


@pytest.mark.slow
def test_report_all_on_a_storage_with_one_study_prints_and_writes_that_studys_report(
    studies, tmp_path
):
    from .conftest import run_cli

    result = run_cli(
        "report", "--all", "--storage", f"sqlite:///{studies / 'good.db'}", "-o", "r.html",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Naive per-stage comparison for study 'tiny'" in result.stdout
    assert "pooled" not in result.stdout and "I²" not in result.stdout  # no consensus
    assert "One searched study only, so this is its full report" in result.stdout  # says why
    assert (
        "One searched study only, so this is its full report" in (tmp_path / "r.html").read_text()
    )


def test_every_accuracy_axis_reads_in_percent_and_one_value_keeps_a_tight_range():
    from nin_search.report._html import _study_figures

    # One completed trial, so every accuracy figure holds one value (plotly would stretch its
    # range to 0..1.9), plus a pruned trial for the intermediate values.
    study = study_of(
        [
            trial_for([stage_spec("mlp")], 0.937, intermediate_values={1: 0.5, 2: 0.937}),
            trial_for(
                [stage_spec("plain")], None, state=TrialState.PRUNED, intermediate_values={1: 0.3}
            ),
        ]
    )
    figures = dict(_study_figures(study, get_stage_verdicts(study)))
    accuracy_figures = ["verdicts", "depth", "width", "cost-params", "cost-macs", "history"]
    for name in [*accuracy_figures, "intermediate-values"]:
        axis = figures[name].layout.yaxis
        assert axis.tickformat.endswith("%"), name
        assert axis.title.text.startswith("validation accuracy"), (name, axis.title.text)
    for name in accuracy_figures[:5]:
        low, high = figures[name].layout.yaxis.range
        assert low < 0.937 < high and high - low < 0.05, (name, low, high)


def test_importances_of_a_multi_objective_study_rank_what_makes_accuracy_high():
    # "high" lifts the best trials' accuracy, "low" sinks the worst: importances for high
    # accuracy rank "high" first (Optuna's evaluator, given a target, ranks for a low one).
    generator = np.random.default_rng(0)
    study = optuna.create_study(directions=["maximize", "minimize"])
    distribution = FloatDistribution(0.0, 1.0)
    for index in range(80):
        params = {"high": float(generator.uniform()), "low": float(generator.uniform())}
        accuracy = 0.5 + 0.4 * (params["high"] > 0.8) - 0.4 * (params["low"] > 0.8)
        study.add_trial(
            create_trial(
                values=[accuracy + 0.01 * float(generator.uniform()), 1000.0 + index],
                params=params,
                distributions=dict.fromkeys(params, distribution),
                user_attrs={"constraint_violation": "over"} if index < 5 else {},
            )
        )
    figure = report.plot_param_importances(study)
    (bars,) = figure.data
    ranked = sorted(zip(bars.x, bars.y, strict=True), reverse=True)
    assert ranked[0][1] == "high", ranked
    assert "from 75 completed trials" in figure.layout.title.text  # over-limit ones left out
    assert "low `target`" not in figure.layout.title.text


def test_the_pareto_table_shows_params_once_when_it_is_an_objective(tmp_path):
    from nin_search.compat import set_study_system_attr
    from nin_search.records import CONFIG, system_attr_key

    study = optuna.create_study(directions=["maximize", "minimize"])
    set_study_system_attr(
        study, system_attr_key(CONFIG), {"study": {"objectives": ["accuracy", "params"]}}
    )
    for accuracy, over in ((0.80, False), (0.90, False), (0.0, True)):
        trial = trial_for([stage_spec("mlp")], accuracy)
        attrs = {**trial.user_attrs, **({"constraint_violation": "params > max"} if over else {})}
        params = trial.user_attrs["params"]
        study.add_trial(
            create_trial(
                values=[accuracy, params],
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=attrs,
            )
        )
    path = tmp_path / "report.html"
    write_report(study, path)
    text = path.read_text(encoding="utf-8")
    front = text[text.index('id="pareto-front"') : text.index("<h2>Best architecture</h2>")]
    assert front.count("<th>params</th>") == 1
    assert "3 complete (1 of them over a cost limit, never trained)" in text
