import pytest
import torch

from nin_search import (
    ArchSpec,
    MLPConv2d,
    StageSpec,
    build_model,
    count_macs,
    count_params,
    presets,
)


def spec_with(kinds: tuple[str, ...], *, head: str, batch_norm: bool) -> ArchSpec:
    stages = []
    for index, kind in enumerate(kinds):
        last = index == len(kinds) - 1
        stages.append(
            StageSpec(
                kind,
                kernel_size=3 if index else 5,
                width=16,
                mlp_widths=(12, 8) if kind == "mlp" else (),
                pool="none" if last else ("max", "avg")[index % 2],
            )
        )
    return ArchSpec(stages=tuple(stages), head=head, batch_norm=batch_norm, dropout=0.1)


@pytest.mark.parametrize("kinds", [("plain", "plain"), ("mlp", "mlp"), ("mlp", "plain", "mlp")])
@pytest.mark.parametrize("head", ["nin", "linear"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_forward_gives_logits_of_the_right_shape_without_nan(kinds, head, batch_norm):
    model = build_model(
        spec_with(kinds, head=head, batch_norm=batch_norm), in_channels=3, num_classes=7
    )
    images = torch.randn(4, 3, 16, 16)
    features = model.forward_features(images)
    logits = model.forward_head(features)
    assert features.shape[:2] == (4, model.num_features)
    assert logits.shape == (4, 7)
    assert torch.isfinite(logits).all()
    loss = logits.logsumexp(1).mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_stages_are_named_and_conv_biases_follow_batch_norm():
    model = build_model(
        spec_with(("mlp", "plain"), head="nin", batch_norm=True), in_channels=1, num_classes=10
    )
    names = set(model.state_dict())
    assert "stages.s0.block.conv.conv.weight" in names
    assert "stages.s0.block.mlp.1.bn.running_mean" in names
    assert "stages.s1.block.conv.weight" in names
    assert "head.conv.weight" in names
    assert "stages.s0.block.conv.conv.bias" not in names  # BN makes the conv bias redundant
    no_bn = build_model(
        spec_with(("mlp",), head="linear", batch_norm=False), in_channels=1, num_classes=10
    )
    assert "stages.s0.block.conv.conv.bias" in no_bn.state_dict()
    assert "head.fc.weight" in no_bn.state_dict()


def test_nin_cifar10_preset_has_exactly_the_caffe_parameter_count():
    model = build_model(presets.nin_cifar10(), in_channels=3, num_classes=10)
    assert count_params(model) == 966_986
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_plain_cifar10_preset_is_nin_without_its_1x1_layers():
    plain = presets.plain_cifar10()
    nin = presets.nin_cifar10()
    assert [s.kind for s in plain.stages] == ["plain"] * 3
    assert [(s.kernel_size, s.width, s.pool) for s in plain.stages] == [
        (s.kernel_size, s.width, s.pool) for s in nin.stages
    ]
    # conv 5x5 3->192, 5x5 192->192, 3x3 192->192, head 1x1 192->10, all with biases
    expected = (3 * 25 + 1) * 192 + (192 * 25 + 1) * 192 + (192 * 9 + 1) * 192 + 193 * 10
    assert count_params(build_model(plain, in_channels=3, num_classes=10)) == expected


def test_macs_count_every_conv_at_its_resolution():
    spec = ArchSpec(
        stages=(
            StageSpec("mlp", kernel_size=3, width=4, mlp_widths=(2,), pool="max"),
            StageSpec("plain", kernel_size=1, width=3),
        ),
        head="linear",
    )
    # 8x8: 3x3 conv 1->4 and 1x1 4->2; 4x4: 1x1 2->3; linear 3->5
    expected = 64 * (9 * 1 * 4 + 4 * 2) + 16 * (2 * 3) + 3 * 5
    assert count_macs(spec, in_channels=1, num_classes=5, image_size=8) == expected


def test_mlpconv2d_is_a_standalone_module():
    block = MLPConv2d(
        3, 32, kernel_size=5, mlp_widths=(24, 16), batch_norm=False, activation="silu"
    )
    out = block(torch.randn(2, 3, 9, 9))
    assert out.shape == (2, 16, 9, 9)
    assert block.out_channels == 16
    assert len(block.mlp) == 2
    assert sum(p.numel() for p in block.parameters()) == (3 * 25 + 1) * 32 + 33 * 24 + 25 * 16
    with pytest.raises(ValueError, match="at least one 1x1"):
        MLPConv2d(3, 8, kernel_size=3, mlp_widths=())


def test_params_are_counted_from_a_spec_with_the_keywords_of_count_macs():
    spec = presets.nin_cifar10()
    assert count_params(spec, in_channels=3, num_classes=10) == 966_986
    with pytest.raises(TypeError, match="num_classes=None"):
        count_params(spec, in_channels=3)


@pytest.mark.parametrize("head", ["nin", "linear"])
def test_weights_keep_pytorchs_default_initialisation(head):
    # PyTorch's default (Kaiming-uniform with a = sqrt(5)) draws every weight within
    # 1/sqrt(fan_in); the Kaiming-normal fan-out init that trained worse in short runs does not.
    torch.manual_seed(0)
    model = build_model(
        spec_with(("mlp", "plain"), head=head, batch_norm=True), in_channels=3, num_classes=10
    )
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) >= 4
    for layer in layers:
        fan_in = layer.weight[0].numel()
        bound = 1 / fan_in**0.5
        assert layer.weight.abs().max().item() <= bound
        assert layer.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.3)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
@pytest.mark.parametrize("channels_last", [True, False])
def test_dropout_drops_at_its_rate_and_keeps_the_expectation(rate, channels_last):
    from nin_search.layers import Dropout

    torch.manual_seed(0)
    ones = torch.ones(64, 32, 8, 8)
    if channels_last:
        ones = ones.contiguous(memory_format=torch.channels_last)
    ones.requires_grad_()
    out = Dropout(rate).train()(ones)
    kept = out != 0
    # 131,072 Bernoulli draws: the kept fraction is within 0.01 of 1 - rate (> 7 sigma).
    assert abs(kept.float().mean().item() - (1 - rate)) < 0.01
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - rate)), rtol=1e-3)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    out.sum().backward()
    assert torch.equal(ones.grad, out.detach())  # the gradient goes through the same mask
    # Each 15-bit field of a 64-bit draw is uniform: no position in the word is biased.
    by_position = kept.flatten().reshape(-1, 4).float().mean(0)
    assert (by_position - (1 - rate)).abs().max() < 0.02


def test_dropout_is_seeded_and_passes_through_in_eval():
    from nin_search.layers import Dropout

    layer = Dropout(0.5).train()
    torch.manual_seed(3)
    first = layer(torch.ones(1000))
    torch.manual_seed(3)
    assert torch.equal(first, layer(torch.ones(1000)))
    assert not torch.equal(first, layer(torch.ones(1000)))
    images = torch.randn(2, 3, 4, 4)
    assert torch.equal(layer.eval()(images), images)
    # A non-contiguous input falls back to nn.Dropout, same rate.
    strided = torch.ones(200, 200)[:, ::2]
    assert abs((layer.train()(strided) == 0).float().mean().item() - 0.5) < 0.02
    model = build_model(presets.nin_cifar10(), in_channels=3, num_classes=10)
    assert isinstance(model.stages.s0.drop, Dropout)


@pytest.mark.parametrize("image_size", [5, 8, 15, 28, 32])
def test_macs_are_what_pytorchs_flop_counter_counts_on_sampled_architectures(image_size):
    # count_macs follows the image's size through the layers without running them; PyTorch's
    # FlopCounterMode runs the network (on the meta device) and counts each conv and matmul.
    import optuna
    from torch.utils.flop_counter import FlopCounterMode

    from nin_search.config import SpaceConfig
    from nin_search.space import suggest_arch

    space = SpaceConfig(
        num_stages=[1, 2, 3, 4],
        kernel_sizes=[1, 3, 5, 7],
        widths=[3, 16, 40],
        mlp_depth=[1, 2, 3],
        mlp_widths=[5, 16],
        pool=["max", "avg"],
        batch_norm=[True, False],
        activation=["relu", "silu"],
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=image_size))
    for _ in range(12):
        spec = suggest_arch(study.ask(), space)
        shape = {"in_channels": 3, "num_classes": 7}
        with torch.device("meta"):
            model = build_model(spec, **shape).eval()
            image = torch.zeros(1, 3, image_size, image_size)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(image)
        assert count_macs(spec, image_size=image_size, **shape) == counter.get_total_flops() // 2
