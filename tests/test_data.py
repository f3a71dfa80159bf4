from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nin_search import UserError
from nin_search.batches import augment_batch
from nin_search.config import AugmentConfig, DataConfig
from nin_search.data import load_search_data, split_indices, to_device
from nin_search.datasets import read_dataset

from .conftest import CIFAR10_MINI


def test_digits_search_data_is_normalised_on_the_device_with_a_stratified_split():
    data = load_search_data(DataConfig(), device="cpu")
    assert data.num_classes == 10 and data.in_channels == 1 and data.image_size == 8
    assert len(data.train) + len(data.val) == 1437  # 1,797 minus the fixed 20% test split
    assert abs(len(data.val) / 1437 - 0.2) < 0.01
    # stratified: every class keeps its share in validation
    counts = torch.bincount(data.val.labels, minlength=10).float()
    assert counts.min() >= 0.8 * counts.mean()
    # normalised with statistics of the training part only
    assert abs(data.train.images.mean().item()) < 1e-4
    assert abs(data.train.images.std().item() - 1) < 0.01
    assert data.train.images.dtype == torch.float32
    assert data.train.images.is_contiguous(memory_format=torch.channels_last)


def test_the_validation_split_is_fixed_and_the_test_split_never_overlaps_search_data():
    config = DataConfig()
    first = load_search_data(config, device="cpu")
    second = load_search_data(config, device="cpu")
    assert torch.equal(first.val.images, second.val.images)
    tensors = read_dataset(config, split="test")
    test = to_device(tensors.images, tensors.labels, first.mean, first.std, "cpu")
    assert len(test) == 360
    search = torch.cat([first.train.images, first.val.images]).flatten(1)
    test_rows = test.images.flatten(1)
    # no test image appears among train/val images (digits has a few exact duplicates in the
    # raw data, so compare per image against the whole search set)
    shared = sum(bool((search == row).all(1).any()) for row in test_rows)
    assert shared <= 3


def test_images_are_resized_when_the_study_asks(tmp_path):
    tensors = read_dataset(DataConfig(image_size=16), split="train")
    assert tensors.images.shape[1:] == (1, 16, 16)
    assert tensors.images.dtype == torch.uint8


def make_folder(root, classes=("cat", "dog"), per_class=6, size=12):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / "train" / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "train" / name / f"{index}.png")
    return root


def test_image_folder_is_decoded_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("NIN_SEARCH_CACHE", str(tmp_path / "cache"))
    root = make_folder(tmp_path / "images")
    config = DataConfig(dataset="imagefolder", root=str(root), image_size=8)
    first = read_dataset(config, split="train")
    assert first.images.shape == (12, 3, 8, 8)
    assert first.classes == ("cat", "dog")
    assert len(list((tmp_path / "cache").glob("imagefolder-*.pt"))) == 1
    second = read_dataset(config, split="train")
    assert torch.equal(first.images, second.images)
    (root / "train" / "dog" / "extra.png").write_bytes(
        (root / "train" / "dog" / "0.png").read_bytes()
    )
    third = read_dataset(config, split="train")
    assert third.images.shape[0] == 13  # a changed folder gets a new cache entry


def test_image_folder_problems_are_user_errors(tmp_path):
    missing = DataConfig(dataset="imagefolder", root=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="not found; set data.root"):
        read_dataset(missing, split="train")
    one_class = make_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(UserError, match="at least 2"):
        read_dataset(DataConfig(dataset="imagefolder", root=str(one_class)), split="train")
    corrupt = make_folder(tmp_path / "corrupt")
    (corrupt / "train" / "cat" / "broken.jpg").write_text("not an image")
    with pytest.raises(UserError, match="cannot decode image .*broken.jpg"):
        read_dataset(DataConfig(dataset="imagefolder", root=str(corrupt)), split="train")
    with pytest.raises(UserError, match="test"):
        read_dataset(DataConfig(dataset="imagefolder", root=str(corrupt)), split="test")


def test_a_root_pointing_at_train_itself_says_which_folder_to_set(tmp_path):
    folder = make_folder(tmp_path / "pets")
    config = DataConfig(dataset="imagefolder", root=str(folder / "train"))
    with pytest.raises(UserError, match=f"so set it to '{folder}'"):
        read_dataset(config, split="train")


def test_missing_torchvision_dataset_without_download_is_a_user_error(tmp_path):
    config = DataConfig(dataset="cifar10", root=str(tmp_path))
    with pytest.raises(UserError, match="cifar10 not found under .*data.download = true"):
        read_dataset(config, split="train")


def test_a_failed_download_is_one_line_and_leaves_no_empty_folders(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self):  # as torchvision fails without a network: folders made, then an error
        Path(self.raw_folder).mkdir(parents=True, exist_ok=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://a\n")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    (tmp_path / "other" / "empty").mkdir(parents=True)  # not the download's: stays
    config = DataConfig(dataset="mnist", root=str(tmp_path / "data"), download=True)
    with pytest.raises(UserError) as raised:
        read_dataset(config, split="train")
    assert "\n" not in str(raised.value)
    assert "download to" in str(raised.value) and "train-images-idx3-ubyte.gz" in str(raised.value)
    assert not (tmp_path / "data").exists()
    config = DataConfig(dataset="mnist", root=str(tmp_path), download=True)
    with pytest.raises(UserError):
        read_dataset(config, split="train")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]
    assert (tmp_path / "other" / "empty").is_dir()


@pytest.mark.skipif(
    not CIFAR10_MINI.is_dir(), reason="shared/data/cifar10-mini is not beside the repo"
)
def test_cifar10_mini_reads_as_an_image_folder():
    config = DataConfig(dataset="imagefolder", root=str(CIFAR10_MINI), val_fraction=0.2)
    data = load_search_data(config, device="cpu")
    assert data.classes[:3] == ("airplane", "automobile", "bird")
    assert (len(data.train), len(data.val)) == (8000, 2000)
    assert data.in_channels == 3 and data.image_size == 32


def test_augmentation_is_batched_and_keeps_shapes():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    generator = torch.Generator().manual_seed(0)
    same = augment_batch(images, AugmentConfig(), generator)
    assert same is images
    flipped = augment_batch(images, AugmentConfig(flip=True), generator)
    for out, original in zip(flipped, images, strict=True):
        assert torch.equal(out, original) or torch.equal(out, original.flip(-1))
    cropped = augment_batch(images, AugmentConfig(crop_padding=2), generator)
    assert cropped.shape == images.shape
    # every crop is a window of the zero-padded image
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for out, pad in zip(cropped, padded, strict=True):
        windows = pad.unfold(1, 4, 1).unfold(2, 4, 1)  # C x 5 x 5 x 4 x 4
        assert any(torch.equal(windows[:, r, c], out) for r in range(5) for c in range(5))


def test_an_impossible_validation_split_names_the_class_or_the_fraction_that_works():
    one_frog = torch.tensor([0] * 6 + [1] * 6 + [2])
    with pytest.raises(UserError, match="class 'frog' has 1 training image: .* add images to it"):
        split_indices(one_frog, val_fraction=0.2, seed=0, classes=("cat", "dog", "frog"))
    many_classes = torch.arange(30).repeat(4)  # 30 classes of 4 images: 24 validation images
    with pytest.raises(UserError, match=r"gives 24 validation images for 30 classes.*to 0\.25 or"):
        split_indices(many_classes, val_fraction=0.2, seed=0)
    _, val_index = split_indices(many_classes, val_fraction=0.25, seed=0)  # the advice works
    assert len(val_index) == 30
    with pytest.raises(UserError, match=r"leaves 24 training images .* to 0\.75 or less"):
        split_indices(many_classes, val_fraction=0.8, seed=0)
    train_index, _ = split_indices(many_classes, val_fraction=0.75, seed=0)
    assert len(train_index) == 30


def test_class_folders_named_in_either_unicode_form_are_one_class(tmp_path):
    import unicodedata

    from nin_search.data import load_final_data

    def write(split: str, name: str, shade: int) -> None:
        folder = tmp_path / split / name
        folder.mkdir(parents=True)
        for index in range(3):
            Image.new("RGB", (4, 4), (shade + index, 0, 0)).save(folder / f"{index}.png")

    for name, shade in (("café", 10), ("dög", 200)):  # Linux writes NFC,
        write("train", unicodedata.normalize("NFC", name), shade)
        write("test", unicodedata.normalize("NFD", name), shade + 5)  # macOS NFD
    config = DataConfig(dataset="imagefolder", root=str(tmp_path), image_size=4)
    _, test, info = load_final_data(config, device="cpu")
    assert info["classes"] == ("café", "dög")
    assert all(unicodedata.is_normalized("NFC", name) for name in info["classes"])
    assert test.labels.tolist() == [0, 0, 0, 1, 1, 1]
    # Two folders of one name in both forms would be two classes that look the same.
    write("train", unicodedata.normalize("NFD", "café"), 50)
    with pytest.raises(UserError, match=r"class folder\(s\) \['café'\] appear twice"):
        read_dataset(config, split="train")


@pytest.mark.parametrize(
    ("val_labels", "expected"),
    [
        ([0] * 6 + [1] * 1, ("cat", 6 / 7)),  # 2 classes: 86% is over halfway to all
        ([0] * 7 + [1] * 3, None),  # 70%: not noted
        ([0] * 5 + [1, 2, 3, 4, 5], ("cat", 0.5)),  # 6 classes: 50% is 3x the even share
        (list(range(6)) * 2, None),
    ],
)
def test_a_class_far_over_its_even_share_is_named_with_what_always_answering_it_scores(
    val_labels, expected
):
    from nin_search.data import DeviceData, SearchData

    classes = ("cat", "dog", "fox", "owl", "eel", "bee")[: max(val_labels) + 1]
    split = DeviceData.from_tensors(torch.zeros(len(val_labels), 1, 4, 4), torch.tensor(val_labels))
    data = SearchData(split, split, classes, (0.5,), (0.2,), AugmentConfig())
    imbalance = data.imbalance()
    if expected is None:
        assert imbalance is None
    else:
        assert imbalance[0] == expected[0] and imbalance[1] == pytest.approx(expected[1])
