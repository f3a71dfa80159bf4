import pytest

from nin_search import UserError, default_config, load_study_config
from nin_search.config import FloatRange, IntRange

from .conftest import CIFAR10_MINI, REPO, write_study


def test_the_shipped_digits_study_is_the_embedded_default():
    assert load_study_config(REPO / "studies" / "digits.toml") == default_config()


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "studies").glob("*.toml")))
def test_every_shipped_study_file_is_valid(name):
    try:
        load_study_config(REPO / "studies" / name)
    except UserError as error:
        # The images of a shipped CIFAR study are checked after its TOML and every value are:
        # without ../shared/data/cifar10-mini beside the checkout, that check is what fails.
        assert not CIFAR10_MINI.is_dir(), error
        assert "needs its image folder" in str(error), error


def test_values_can_be_fixed_chosen_or_ranged(tmp_path):
    path = write_study(
        tmp_path,
        """
        [space]
        widths = { low = 16, high = 256, log = true }
        dropout = 0.3
        mlp_depth = [1, 3]
        [train]
        learning_rate = { low = 0.01, high = 0.1 }
        """,
    )
    config = load_study_config(path)
    assert config.space.widths == IntRange(low=16, high=256, log=True)
    assert config.space.dropout == 0.3
    assert config.space.mlp_depth == [1, 3]
    assert config.train.learning_rate == FloatRange(low=0.01, high=0.1)


def test_relative_data_root_is_resolved_against_the_study_file(tmp_path):
    (tmp_path / "images").mkdir()
    path = write_study(tmp_path, '[data]\ndataset = "imagefolder"\nroot = "images"\n')
    assert load_study_config(path).data.root == str((tmp_path / "images").resolve())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[study\nname = 1", "not valid TOML"),
        ("[space]\nwidth = [16]", "unknown key 'space.width' (did you mean 'widths'?"),
        ("[trainer]\nepochs = 3", "unknown key 'trainer' (did you mean 'train'?"),
        ("[data.augment]\nflipp = true", "unknown key 'data.augment.flipp' (did you mean 'flip'?"),
        ("[train]\nlearning_rate = { low = 0.01, hihg = 0.1 }", "(did you mean 'high'?"),
        ("[space]\nzzz = 1", "unknown key 'space.zzz' (check the spelling"),
        ("[train]\nepochs = 'ten'", "train.epochs"),
        ("[train]\nepochs = 0", "train.epochs: Input should be greater than or equal to 1"),
        ("[space]\nwidths = [16, 0]", "study.toml: space.widths must be > 0, but got 0"),
        ("[train]\nepochs = true", "train.epochs: Input should be a valid integer, but got true"),
        ("[space]\nwidths = [-4]", "space.widths must be > 0, but got -4"),
        ("[space]\nwidths = []", "space.widths"),
        ("[space]\nstage_types = []", "space.stage_types"),
        ("[space]\nstage_types = ['conv']", "space.stage_types"),
        ("[space]\nkernel_sizes = [4]", "must be odd"),
        ("[space]\nmlp_depth = { low = 3, high = 1 }", "low must be <= high"),
        ("[space]\nnum_stages = 6", "8x8 images allow at most 4 stages"),
        ("[data]\ndataset = 'imagenet'", "data.dataset"),
        ("[data]\ndataset = 'imagefolder'", "needs data.root"),
        ("[train]\nlearning_rate = { low = 0, high = 1, log = true }", "log range needs low > 0"),
        ("[space]\ndropout = 1.0", "space.dropout must be in [0, 1)"),
        ("[optuna]\nsampler = 'grid'", "optuna.sampler"),
    ],
)
def test_bad_study_files_raise_one_clear_user_error(tmp_path, text, message):
    path = write_study(tmp_path, text)
    with pytest.raises(UserError) as raised:
        load_study_config(path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_study_file_says_what_to_pass(tmp_path):
    with pytest.raises(
        UserError, match="not found; pass a path to a study file, a shipped study's name"
    ):
        load_study_config(tmp_path / "nope.toml")
