import math

import pytest
import torch

from nin_search import ArchSpec, Hyperparameters, StageSpec, UserError, build_model
from nin_search.config import DataConfig
from nin_search.data import load_search_data
from nin_search.devices import resolve_device
from nin_search.train import NonFiniteLossError, TrainSettings, train

SPEC = ArchSpec(
    stages=(
        StageSpec("mlp", kernel_size=3, width=16, mlp_widths=(16,), pool="max"),
        StageSpec("plain", kernel_size=3, width=16),
    ),
    head="nin",
)


@pytest.fixture(scope="module")
def digits():
    return load_search_data(DataConfig(), device="cpu")


def fit(data, hparams, *, epochs=3, seed=0, on_epoch=None):
    torch.manual_seed(seed)
    model = build_model(SPEC, in_channels=1, num_classes=10)
    settings = TrainSettings(hparams, epochs=epochs, seed=seed)
    return train(model, data.train, data.val, settings, on_epoch=on_epoch)


def test_training_learns_digits_and_reports_every_epoch(digits):
    seen = []
    hparams = Hyperparameters(learning_rate=0.05, batch_size=64)
    result = fit(digits, hparams, epochs=6, on_epoch=seen.append)
    assert [r.epoch for r in seen] == [1, 2, 3, 4, 5, 6]
    assert result.history == tuple(seen)
    assert result.final_accuracy > 0.8  # chance is 0.1
    assert seen[-1].train_loss < seen[0].train_loss


def test_same_seed_gives_the_same_result(digits):
    hparams = Hyperparameters(optimizer="adamw", learning_rate=3e-3, batch_size=128)
    first = fit(digits, hparams, epochs=2, seed=3)
    second = fit(digits, hparams, epochs=2, seed=3)
    assert [r.val_accuracy for r in first.history] == [r.val_accuracy for r in second.history]
    assert [r.train_loss for r in first.history] == [r.train_loss for r in second.history]


def test_a_diverging_run_stops_with_a_non_finite_loss_error(digits):
    hparams = Hyperparameters(learning_rate=1e12, momentum=0.9, batch_size=32)
    with pytest.raises(NonFiniteLossError) as raised:
        fit(digits, hparams, epochs=3)
    assert raised.value.epoch == 1
    assert not math.isfinite(raised.value.loss)


def test_on_epoch_can_stop_training(digits):
    class Stop(Exception):
        pass

    def stop_after_first(result):
        raise Stop

    with pytest.raises(Stop):
        fit(digits, Hyperparameters(), on_epoch=stop_after_first)


def test_devices_resolve_or_fail_clearly():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(UserError, match="unknown device 'tpu7'"):
        resolve_device("tpu7")
    assert resolve_device("cpu:0").type == "cpu"
    with pytest.raises(UserError, match="'cpu:1' does not exist: the cpu is one device"):
        resolve_device("cpu:1")  # torch accepts it, and would put everything on the one CPU
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_a_run_resumed_from_a_checkpoint_continues_exactly_as_if_never_stopped(digits, tmp_path):
    hparams = Hyperparameters(optimizer="adamw", learning_rate=3e-3, batch_size=128)
    whole = fit(digits, hparams, epochs=4, seed=5)

    class Killed(Exception):
        pass

    def kill_in_epoch_3(result):
        # The epoch being reported is already saved: a kill right after the report loses
        # nothing that the study recorded.
        assert len(torch.load(checkpoint, weights_only=True)["history"]) == result.epoch
        if result.epoch == 3:
            raise Killed

    checkpoint = tmp_path / "checkpoint.pt"
    settings = TrainSettings(hparams, epochs=4, seed=5, checkpoint_path=checkpoint)
    torch.manual_seed(5)
    model = build_model(SPEC, in_channels=1, num_classes=10)
    with pytest.raises(Killed):
        train(model, digits.train, digits.val, settings, on_epoch=kill_in_epoch_3)
    state = torch.load(checkpoint, weights_only=True)  # no pickled code
    assert len(state["history"]) == 3  # the checkpoint of the last finished epoch
    seen = []
    fresh = build_model(SPEC, in_channels=1, num_classes=10)  # other initial weights
    resumed = train(fresh, digits.train, digits.val, settings, on_epoch=seen.append)
    assert [r.epoch for r in seen] == [4]  # only the new epochs are reported
    assert [(r.epoch, r.train_loss, r.val_accuracy) for r in resumed.history] == [
        (r.epoch, r.train_loss, r.val_accuracy) for r in whole.history
    ]


def test_ctrl_c_while_a_checkpoint_is_written_leaves_the_last_one_and_no_partial_file(
    digits, tmp_path, monkeypatch
):
    hparams = Hyperparameters(optimizer="adamw", learning_rate=3e-3, batch_size=128)
    checkpoint = tmp_path / "checkpoint.pt"
    settings = TrainSettings(hparams, epochs=2, seed=5, checkpoint_path=checkpoint)
    saves = []
    real_save = torch.save

    def save_then_ctrl_c_in_the_second(state, path):
        saves.append(path)
        real_save(state, path)
        if len(saves) == 2:  # half written, as far as anyone can tell
            raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", save_then_ctrl_c_in_the_second)
    model = build_model(SPEC, in_channels=1, num_classes=10)
    with pytest.raises(KeyboardInterrupt):
        train(model, digits.train, digits.val, settings)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert len(torch.load(checkpoint, weights_only=True)["history"]) == 1  # epoch 1's


@pytest.mark.parametrize(
    ("flags", "found"),
    [
        ("flags\t\t: fpu sse2 avx2 fma", set()),  # AVX2 only (the AMD EPYC of 11-28)
        ("flags\t\t: fpu avx2 avx512f avx512_bf16", {"avx512_bf16"}),  # Zen 4/5, Cooper Lake
        ("flags\t\t: fpu avx512_bf16 amx_tile amx_bf16", {"avx512_bf16", "amx_bf16"}),  # SPR
        ("Features\t: fp asimd bf16 i8mm", {"bf16"}),  # Arm (Graviton 3, Neoverse V1)
        ("processor\t: 0", set()),  # no flags line
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, found):
    from nin_search.devices import cpu_bf16_flags, cpu_has_native_bf16

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\n{flags}\n")
    assert cpu_bf16_flags(cpuinfo) == found
    assert cpu_has_native_bf16(cpuinfo) is bool(found)
    assert cpu_bf16_flags(tmp_path / "missing") == frozenset()
    assert cpu_has_native_bf16(tmp_path / "missing") is False  # macOS, Windows


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_on_a_cpu_that_multiplies_bf16_natively(monkeypatch, native):
    from nin_search import devices

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert devices.resolve_precision("auto", cpu).name == ("bf16" if native else "fp32")
    assert devices.resolve_precision("fp32", cpu).name == "fp32"
    assert devices.resolve_precision("bf16", cpu).name == "bf16"  # asked for: emulated if need be
    assert devices.resolve_precision("auto", torch.device("mps")).name == "fp32"
    with pytest.raises(ValueError, match="precision must be one of .* but got 'fp16'"):
        devices.resolve_precision("fp16", cpu)


def test_bf16_training_runs_in_bf16_learns_and_says_so(digits):
    torch.manual_seed(0)
    model = build_model(SPEC, in_channels=1, num_classes=10)
    hparams = Hyperparameters(learning_rate=0.05, batch_size=64)
    seen_dtypes = []
    model.stages.register_forward_hook(
        lambda module, inputs, output: seen_dtypes.append(output.dtype)
    )
    result = train(
        model, digits.train, digits.val, TrainSettings(hparams, epochs=4, seed=0, precision="bf16")
    )
    assert result.precision == "bf16"
    assert torch.bfloat16 in seen_dtypes  # the convs ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert result.final_accuracy > 0.7
    from nin_search.devices import cpu_has_native_bf16

    auto = fit(digits, hparams, epochs=1).precision  # the default, "auto"
    assert auto == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainSettings(hparams, precision="half")


def test_train_settings_take_numpy_integers_and_refuse_bools():
    import numpy as np

    assert TrainSettings(epochs=np.int64(2), seed=np.int32(3)).epochs == 2
    with pytest.raises(ValueError, match="epochs=True"):
        TrainSettings(epochs=True)
