"""The preprocessing facts and the torch-only steps: the data path and a new image meet exactly."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nin_search import UserError
from nin_search.config import DataConfig
from nin_search.data import load_search_data, split_indices, to_device
from nin_search.datasets import read_dataset
from nin_search.preprocessing import RESIZE_METHOD, Preprocessing
from nin_search.transforms import image_to_tensor, resize_image, to_model_input, to_uint8


def test_preprocessing_round_trips_through_a_dict_of_json_types():
    facts = Preprocessing(channels=3, image_size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.25))
    data = facts.to_dict()
    assert data == {
        "channels": 3,
        "image_size": 32,
        "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.2, 0.25],
        "input_max": 255.0,
        "resize": RESIZE_METHOD,
    }
    assert Preprocessing.from_dict(data) == facts


@pytest.mark.parametrize(
    ("changes", "quoted"),
    [
        ({"channels": 0}, "channels=0"),
        ({"mean": (0.5, 0.5)}, "mean=[0.5, 0.5]"),
        ({"std": (0.2, 0.0, 0.2)}, "std=[0.2, 0.0, 0.2]"),
        ({"input_max": -1}, "input_max=-1"),
        ({"resize": "nearest"}, "resize='nearest'"),
    ],
)
def test_preprocessing_refuses_impossible_facts_and_quotes_them(changes, quoted):
    arguments = {"channels": 3, "image_size": 8, "mean": (0.5,) * 3, "std": (0.2,) * 3}
    with pytest.raises(ValueError, match=re.escape(quoted)):
        Preprocessing(**{**arguments, **changes})


def test_preprocessing_from_an_incomplete_dict_names_what_is_missing():
    with pytest.raises(ValueError, match="lacks image_size, std"):
        Preprocessing.from_dict({"channels": 1, "mean": [0.5]})


def _write(path: Path, size: tuple[int, int], seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def test_an_image_file_of_any_size_becomes_exactly_the_tensor_the_data_path_trained_on(tmp_path):
    # Image files of the training size, larger, smaller and not square, in JPEG and PNG.
    sizes = [(16, 16), (20, 20), (12, 12), (23, 17), (16, 16), (31, 9)]
    for index, size in enumerate(sizes):
        suffix = "png" if index % 2 else "jpg"
        _write(tmp_path / "train" / f"class{index % 2}" / f"{index}.{suffix}", size, index)
    config = DataConfig(dataset="imagefolder", root=str(tmp_path), image_size=16, val_fraction=0.5)
    data = load_search_data(config, device="cpu")
    facts = data.preprocessing
    assert facts == Preprocessing(channels=3, image_size=16, mean=data.mean, std=data.std)
    tensors = read_dataset(config, split="train")
    expected = to_device(tensors.images, tensors.labels, facts.mean, facts.std, "cpu").images
    files = sorted((tmp_path / "train").rglob("*.*"))  # ImageFolder's order
    for index, path in enumerate(files):
        with Image.open(path) as image:
            actual = to_model_input(
                image,
                channels=3,
                image_size=16,
                mean=facts.mean,
                std=facts.std,
                input_max=facts.input_max,
            )
        assert actual.shape == (1, 3, 16, 16)
        assert torch.equal(actual[0], expected[index]), path.name


def test_a_16_bit_grey_png_is_scaled_to_8_bits_not_clamped_to_white(tmp_path):
    wide = np.linspace(0, 65535, 48, dtype=np.float64).round().astype(np.uint16).reshape(6, 8)
    Image.fromarray(wide).save(tmp_path / "grey16.png")
    expected = torch.from_numpy(np.round(wide * (255 / 65535)).astype(np.uint8))
    with Image.open(tmp_path / "grey16.png") as image:
        assert image.mode == "I;16"  # as Pillow opens a 16-bit grey PNG
        for channels in (1, 3):
            pixels = image_to_tensor(image, channels)
            assert pixels.shape == (channels, 6, 8)
            assert all(torch.equal(channel, expected) for channel in pixels)  # 0..255, not 255s
        assert torch.equal(image_to_tensor(image.convert("I"), 1)[0], expected)
    # The data path decodes image folders with the same function: a 16-bit training image
    # is the picture, as the exported model will see it.
    for index in range(4):
        path = tmp_path / "data" / "train" / f"class{index % 2}" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(wide).save(path)
    config = DataConfig(dataset="imagefolder", root=str(tmp_path / "data"), image_size=8)
    images = read_dataset(config, split="train").images
    assert torch.equal(images[0, 0], resize_image(expected[None], 8)[0])


def test_a_palette_png_with_transparency_decodes_silently_to_its_colours(tmp_path, recwarn):
    colours = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(colours).convert("P").save(tmp_path / "p.png", transparency=bytes(range(256)))
    with Image.open(tmp_path / "p.png") as image:
        assert image.mode == "P" and isinstance(image.info["transparency"], bytes)
        expected = torch.from_numpy(np.array(image.convert("RGBA"))[..., :3]).permute(2, 0, 1)
        assert torch.equal(image_to_tensor(image, 3), expected)
    # Pillow warns "Palette images with Transparency expressed in bytes should be converted
    # to RGBA images" when asked for RGB directly; users saw it on stderr.
    assert not [warning for warning in recwarn if "Palette images" in str(warning.message)]


def test_a_float_image_is_refused_in_words_not_decoded_to_black(tmp_path):
    # Mode "F" holds any range (often 0..1); Pillow's conversion clamps it to 0..255: black.
    Image.fromarray(np.full((4, 4), 0.8, dtype=np.float32)).save(tmp_path / "float.tif")
    with Image.open(tmp_path / "float.tif") as image, pytest.raises(ValueError, match="mode F"):
        image_to_tensor(image, 3)
    for index in range(4):
        path = tmp_path / "data" / "train" / f"class{index % 2}" / f"{index}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), 0.8, dtype=np.float32)).save(path)
    config = DataConfig(dataset="imagefolder", root=str(tmp_path / "data"), image_size=4)
    with pytest.raises(UserError, match=r"0\.tif' \(ValueError: a 32-bit float image"):
        read_dataset(config, split="train")


def test_resizing_is_torch_s_not_pillow_s_so_both_sides_can_reproduce_it(tmp_path):
    _write(tmp_path / "big.png", (40, 40), 0)
    with Image.open(tmp_path / "big.png") as image:
        by_pillow = torch.from_numpy(np.array(image.resize((32, 32), Image.Resampling.BILINEAR)))
        by_torch = resize_image(image_to_tensor(image, 3), 32)
    assert not torch.equal(by_pillow.permute(2, 0, 1), by_torch)  # the difference is real


def test_resizing_one_image_or_a_batch_gives_the_same_pixels():
    images = torch.randint(0, 256, (6, 3, 21, 27), dtype=torch.uint8)
    batch = resize_image(images, 16)
    one_by_one = torch.stack([resize_image(image, 16) for image in images])
    assert batch.dtype == torch.uint8 and batch.shape == (6, 3, 16, 16)
    assert torch.equal(batch, one_by_one)
    same = images[:, :, :16, :16]
    assert resize_image(same, 16) is same  # already the size: untouched


def test_raw_digits_in_0_to_16_become_exactly_the_training_tensors():
    from sklearn.datasets import load_digits

    config = DataConfig(dataset="digits")
    data = load_search_data(config, device="cpu")
    facts = data.preprocessing
    assert facts.input_max == 16.0 and facts.channels == 1 and facts.image_size == 8
    tensors = read_dataset(config, split="train")
    train_index, _ = split_indices(tensors.labels, val_fraction=0.2, seed=0)
    raw = torch.from_numpy(load_digits().images)  # float64 grey levels 0..16
    # The training split's first images, found by value among all digits.
    expected = data.train.images[:5]
    first = tensors.images[train_index[:5]]
    positions = [
        int(np.flatnonzero((to_uint8(raw, 16.0) == image[0]).all(dim=(1, 2)).numpy())[0])
        for image in first
    ]
    actual = torch.cat(
        [
            to_model_input(
                raw[position],  # H x W, as load_digits gives it
                channels=1,
                image_size=8,
                mean=facts.mean,
                std=facts.std,
                input_max=facts.input_max,
            )
            for position in positions
        ]
    )
    assert torch.equal(actual, expected)


def test_float_pixels_are_scaled_by_input_max_and_rounded_half_to_even():
    pixels = torch.tensor([0.0, 8.0, 16.0, 20.0, -1.0], dtype=torch.float64)
    assert to_uint8(pixels, 16.0).tolist() == [0, 128, 255, 255, 0]  # 127.5 -> 128
    assert to_uint8(torch.tensor([0.5]), 1.0).tolist() == [128]  # 127.5 -> 128
    uint8 = torch.tensor([3, 250], dtype=torch.uint8)
    assert to_uint8(uint8, 16.0) is uint8  # 8-bit pixels are already 0..255


def test_pixels_of_the_wrong_channel_count_are_refused_with_the_shape_given():
    with pytest.raises(ValueError, match=r"C = 3, but got shape \(2, 8, 8\)"):
        to_model_input(
            torch.zeros(2, 8, 8, dtype=torch.uint8),
            channels=3,
            image_size=8,
            mean=(0.5,) * 3,
            std=(0.2,) * 3,
            input_max=255.0,
        )


@pytest.mark.parametrize(
    ("input_max", "start"),
    [
        (255.0, "pixels 0..255 -> 8 x 8"),
        (16.0, "pixels in [0, 16] -> x 255/16, rounded to 0..255 -> 8 x 8"),  # sklearn's digits
    ],
)
def test_the_preprocessing_in_words_names_every_step_the_code_takes(input_max, start):
    from nin_search.preprocessing import Preprocessing

    words = Preprocessing(1, 8, (0.3,), (0.4,), input_max=input_max).describe()
    assert words.startswith(start) and "-> / 255 -> minus mean (0.3000)" in words
    # The steps it names give what the code gives: a white pixel of the raw scale.
    from nin_search.transforms import to_model_input

    white = to_model_input(
        torch.full((8, 8), input_max), channels=1, image_size=8, mean=(0.3,), std=(0.4,),
        input_max=input_max,
    )  # fmt: skip
    assert torch.allclose(white, torch.full_like(white, (1 - 0.3) / 0.4))


def test_grey_pixels_are_repeated_for_an_rgb_network_as_pillow_converts_them():
    facts = {"image_size": 8, "mean": (0.5,) * 3, "std": (0.2,) * 3, "input_max": 255.0}
    grey = torch.randint(0, 256, (8, 8), dtype=torch.uint8)
    rgb = to_model_input(grey.expand(3, -1, -1), channels=3, **facts)
    assert torch.equal(to_model_input(grey, channels=3, **facts), rgb)  # H x W
    assert torch.equal(to_model_input(grey[None], channels=3, **facts), rgb)  # 1 x H x W
    image = Image.fromarray(grey.numpy(), mode="L")
    assert torch.equal(to_model_input(image, channels=3, **facts), rgb)  # as Pillow does


def test_pixels_in_an_unexpected_range_are_preprocessed_with_a_warning_that_says_what_to_pass():
    facts = {"channels": 1, "image_size": 8, "mean": (0.5,), "std": (0.2,)}
    levels = torch.randint(1, 17, (8, 8))
    with pytest.warns(UserWarning, match="pass them as another dtype"):
        to_model_input(levels.to(torch.uint8), input_max=16.0, **facts)  # raw 0..16 as uint8
    with pytest.warns(UserWarning, match="pass input_max=1.0"):
        to_model_input(levels / 16.0, input_max=255.0, **facts)  # to_tensor's [0, 1]
    with pytest.warns(UserWarning, match="these reach 240 and are clamped to white"):
        to_model_input((levels * 15).double(), input_max=16.0, **facts)  # 0..255 as floats
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the conventions themselves: no warning
        to_model_input(levels, input_max=16.0, **facts)
        to_model_input(levels / 16.0, input_max=1.0, **facts)
        to_model_input((levels * 15).to(torch.uint8), input_max=16.0, **facts)
        to_model_input(torch.zeros(8, 8), input_max=255.0, **facts)  # black: nothing to tell
