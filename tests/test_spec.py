import json

import pytest

from nin_search import ArchSpec, Hyperparameters, SpecError, StageSpec, presets


def mixed_spec() -> ArchSpec:
    return ArchSpec(
        stages=(
            StageSpec("mlp", kernel_size=5, width=32, mlp_widths=(16, 24), pool="max"),
            StageSpec("plain", kernel_size=3, width=48, pool="avg"),
            StageSpec("mlp", kernel_size=3, width=64, mlp_widths=(32,)),
        ),
        head="linear",
        batch_norm=True,
        activation="gelu",
        dropout=0.25,
    )


@pytest.mark.parametrize("spec", [mixed_spec(), presets.nin_cifar10(), presets.plain_cifar10()])
def test_spec_survives_a_json_round_trip(spec):
    assert ArchSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"kind": "conv"}, "kind='conv'"),
        ({"width": 0}, "width=0"),
        ({"width": -8}, "width=-8"),
        ({"kernel_size": 4}, "kernel_size=4"),
        ({"mlp_widths": (16, 0)}, "mlp2_width=0"),
        ({"pool": "stride"}, "pool='stride'"),
    ],
)
def test_stage_spec_rejects_impossible_values_and_quotes_them(kwargs, quoted):
    base = {"kind": "mlp", "kernel_size": 3, "width": 16, "mlp_widths": (16,)}
    with pytest.raises(SpecError, match=quoted.replace("(", r"\(").replace(")", r"\)")):
        StageSpec(**{**base, **kwargs})


def test_plain_stage_cannot_have_1x1_layers_and_mlp_stage_needs_one():
    with pytest.raises(SpecError, match="plain stage has no 1x1"):
        StageSpec("plain", kernel_size=3, width=16, mlp_widths=(8,))
    with pytest.raises(SpecError, match="at least one 1x1"):
        StageSpec("mlp", kernel_size=3, width=16)


def test_arch_spec_rejects_a_downsampling_last_stage_and_bad_head_and_dropout():
    stage = StageSpec("plain", kernel_size=3, width=16, pool="max")
    with pytest.raises(SpecError, match="last stage must not downsample"):
        ArchSpec(stages=(stage,))
    last = StageSpec("plain", kernel_size=3, width=16)
    with pytest.raises(SpecError, match="head='fc'"):
        ArchSpec(stages=(last,), head="fc")
    with pytest.raises(SpecError, match="dropout=1.5"):
        ArchSpec(stages=(last,), dropout=1.5)
    with pytest.raises(SpecError, match="stages=\\[\\]"):
        ArchSpec(stages=())


def test_from_dict_rejects_unknown_keys():
    data = mixed_spec().to_dict()
    data["depth"] = 3
    with pytest.raises(SpecError, match="unknown ArchSpec keys \\['depth'\\]"):
        ArchSpec.from_dict(data)


def test_summary_names_every_stage():
    assert mixed_spec().summary() == (
        "mlp5x5-32-16-24/max > plain3x3-48/avg > mlp3x3-64-32 | linear, bn, gelu, drop0.25"
    )


def test_hyperparameters_validate_and_round_trip():
    hparams = Hyperparameters(optimizer="adamw", learning_rate=1e-3, batch_size=64)
    assert Hyperparameters.from_dict(hparams.to_dict()) == hparams
    with pytest.raises(SpecError, match="optimizer='adam'"):
        Hyperparameters(optimizer="adam")
    with pytest.raises(SpecError, match="batch_size=0"):
        Hyperparameters(batch_size=0)
    with pytest.raises(SpecError, match="momentum must be in"):
        Hyperparameters(momentum=5.0)
    with pytest.raises(SpecError, match="learning_rate must be > 0 and finite, but got inf"):
        Hyperparameters(learning_rate=float("inf"))
    with pytest.raises(SpecError, match=r"unknown Hyperparameters keys \['lr'\]"):
        Hyperparameters.from_dict({"lr": 0.1})


def test_the_public_names_are_exactly_the_lazily_imported_ones():
    import nin_search

    lazy = {*nin_search._EXPORTS, *nin_search._SUBMODULES, "__version__"}
    assert set(nin_search.__all__) == lazy
    for name in nin_search.__all__:
        assert getattr(nin_search, name) is not None


def test_a_numpy_integer_is_refused_in_a_spec_whose_json_could_not_hold_it():
    import numpy as np

    with pytest.raises(SpecError, match=r"width=np\.int64\(16\)"):
        StageSpec("plain", kernel_size=3, width=np.int64(16))
