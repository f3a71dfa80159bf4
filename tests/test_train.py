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
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_a_run_resumed_from_a_checkpoint_continues_exactly_as_if_never_stopped(digits, tmp_path):
    hparams = Hyperparameters(optimizer="adamw", learning_rate=3e-3, batch_size=128)
    whole = fit(digits, hparams, epochs=4, seed=5)

    class Killed(Exception):
        pass

    def kill_in_epoch_3(result):
        if result.epoch == 3:
            raise Killed

    checkpoint = tmp_path / "checkpoint.pt"
    settings = TrainSettings(hparams, epochs=4, seed=5, checkpoint_path=checkpoint)
    torch.manual_seed(5)
    model = build_model(SPEC, in_channels=1, num_classes=10)
    with pytest.raises(Killed):
        train(model, digits.train, digits.val, settings, on_epoch=kill_in_epoch_3)
    state = torch.load(checkpoint, weights_only=True)  # no pickled code
    assert len(state["history"]) == 2  # the checkpoint of the last finished epoch
    seen = []
    fresh = build_model(SPEC, in_channels=1, num_classes=10)  # other initial weights
    resumed = train(fresh, digits.train, digits.val, settings, on_epoch=seen.append)
    assert [r.epoch for r in seen] == [3, 4]  # only the new epochs are reported
    assert [(r.epoch, r.train_loss, r.val_accuracy) for r in resumed.history] == [
        (r.epoch, r.train_loss, r.val_accuracy) for r in whole.history
    ]
