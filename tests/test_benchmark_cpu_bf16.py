"""``benchmarks/cpu_bf16.py --sample`` times architectures of each CIFAR study's own space, and
the same ones on every run (RESULTS.md quotes them by name)."""

import sys

import pytest

from nin_search.study_files import load_study_config

from .conftest import CIFAR10_MINI, REPO

sys.path.insert(0, str(REPO / "benchmarks"))
cpu_bf16 = pytest.importorskip("cpu_bf16")
# Loading a shipped CIFAR study checks that its images are beside the checkout.
needs_images = pytest.mark.skipif(
    not CIFAR10_MINI.is_dir(), reason="needs ../shared/data/cifar10-mini"
)


@needs_images
@pytest.mark.parametrize("study", ["cifar10-mini", "cifar10-mini-quick"])
def test_sample_draws_varied_architectures_from_the_study_space_the_same_on_every_run(study):
    config = load_study_config(REPO / "studies" / f"{study}.toml")
    drawn = cpu_bf16.drawn(study, 12)

    assert drawn == cpu_bf16.drawn(study, 12)
    assert len({cpu_bf16.describe(spec) for spec, _ in drawn}) == 12
    assert {batch for _, batch in drawn} == set(config.train.batch_size)
    for spec, _ in drawn:
        assert len(spec.stages) == config.space.num_stages
        for stage in spec.stages:
            assert stage.kind in config.space.stage_types
            assert stage.kernel_size in config.space.kernel_sizes
            assert stage.width in config.space.widths
            assert set(stage.mlp_widths) <= set(config.space.mlp_widths)
            depth = config.space.mlp_depth
            assert stage.mlp_widths == () or depth.low <= len(stage.mlp_widths) <= depth.high


@needs_images
def test_the_network_accuracy_trains_is_the_quick_study_s_typical_or_the_first_drawn():
    assert cpu_bf16.describe(cpu_bf16.accuracy_network("cifar10-mini-quick")) == (
        "mlp3-32(32) plain5-32 mlp3-16(16)"
    )
    first, _ = cpu_bf16.drawn("cifar10-mini", 1)[0]
    assert cpu_bf16.accuracy_network("cifar10-mini") == first
    assert cpu_bf16.describe(first) == "mlp5-64(48) plain3-32 mlp5-64(64,48)"
