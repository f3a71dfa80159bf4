"""The preprocessing part of a deployable export: constants, transforms and ``preprocess``."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from nin_search.export._format import LINE_LENGTH, Call, display_width, render, string_literal
from nin_search.export._info import ExportInfo

# The constants that carry the preprocessing facts, in the order the file defines them.
PREPROCESS_CONSTANTS = ("CHANNELS", "IMAGE_SIZE", "RESIZE", "INPUT_MAX", "MEAN", "STD", "CLASSES")


def _module_functions() -> tuple[list[str], str]:
    """The names of :mod:`nin_search.transforms`' top-level functions (its private helpers
    too), in the module's order, and the module's source (read, not imported: an export of
    source code needs no PyTorch)."""
    spec = importlib.util.find_spec("nin_search.transforms")
    assert spec is not None and spec.origin is not None  # part of this package
    source = Path(spec.origin).read_text(encoding="utf-8")
    tree = ast.parse(source)
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)], source


# The functions of nin_search.transforms, which the exported file carries verbatim.
TRANSFORM_FUNCTIONS = tuple(_module_functions()[0])


def preprocess_constants(info: ExportInfo) -> str:
    """The preprocessing facts as constants (``info.preprocessing`` is set)."""
    facts = info.preprocessing
    assert facts is not None

    def floats(values: tuple[float, ...]) -> Call:
        return Call("", tuple(repr(float(value)) for value in values))

    names = info.class_names or tuple(str(index) for index in range(info.num_classes))
    lines = [
        "# What training did to every decoded image (preprocess does the same): pixels to 0..255,",
        "# resized to IMAGE_SIZE x IMAGE_SIZE by RESIZE, divided by 255, then per channel minus",
        "# MEAN and divided by STD (statistics of the training images, in [0, 1] units).",
        f'CHANNELS = {int(facts.channels)}  # 1: grey (Pillow mode "L"), 3: RGB',
        f"IMAGE_SIZE = {int(facts.image_size)}  # pixels, square (the aspect ratio is not kept)",
        f"RESIZE = {string_literal(facts.resize)}  # F.interpolate, antialias=True, rounded",
        f"INPUT_MAX = {float(facts.input_max)!r}  # a white pixel in the training data's raw"
        " pixels",
        *render(floats(facts.mean), 0, "MEAN = "),
        *render(floats(facts.std), 0, "STD = "),
        "# The class names, in the order of the network's outputs.",
        *render(Call("", tuple(string_literal(name) for name in names)), 0, "CLASSES = "),
        *_meta(info),
    ]
    # A class name longer than a line cannot be split; say so to the linter.
    return "\n".join(
        f"{line}  # noqa: E501" if display_width(line) > LINE_LENGTH else line for line in lines
    )


def _meta(info: ExportInfo) -> list[str]:
    """``META``: the facts as data, as torchvision's ``weights.meta`` and timm's
    ``pretrained_cfg`` hold them."""

    def number(value: float | None) -> str:
        return "None" if value is None else repr(float(value))

    study = string_literal(info.study_name) if info.study_name is not None else "None"
    facts = [
        ("categories", "CLASSES"),
        ("input_size", "(CHANNELS, IMAGE_SIZE, IMAGE_SIZE)"),
        ("mean", "MEAN"),
        ("std", "STD"),
        ("num_params", "None" if info.params is None else str(int(info.params))),
        ("macs", "None" if info.macs is None else str(int(info.macs))),
        ("val_accuracy", number(info.val_accuracy)),
        ("test_accuracy", number(info.test_accuracy)),
        ("study", study),
        ("trial", "None" if info.trial_number is None else str(int(info.trial_number))),
        ("precision", "None" if info.precision is None else string_literal(info.precision)),
        ("training", "None" if info.training is None else string_literal(info.training)),
    ]
    comment = "# The same facts as data (torchvision: weights.meta; timm: pretrained_cfg)."
    return [comment, "META = {", *(f'    "{key}": {value},' for key, value in facts), "}"]


def transform_functions() -> str:
    """The functions of :mod:`nin_search.transforms`, verbatim, in the module's order."""
    _, source = _module_functions()
    tree = ast.parse(source)
    functions = [
        ast.get_source_segment(source, node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    ]
    return "\n\n\n".join(segment for segment in functions if segment)


PREPROCESS_FUNCTION = '''\
def preprocess(image: Any, *, input_max: float = INPUT_MAX) -> torch.Tensor:
    """A decoded image -> this network's input: float32 ``N x CHANNELS x IMAGE_SIZE x IMAGE_SIZE``.

    Exactly what training did to every image: pixels to 0..255 (float pixels in
    ``[0, input_max]`` scaled and rounded), resized to ``IMAGE_SIZE x IMAGE_SIZE`` (``RESIZE``)
    unless already that size, divided by 255, then per channel minus ``MEAN``, divided by ``STD``.

    Args:
        image: A Pillow image (``Image.open(path)``; converted to grey or RGB to match
            ``CHANNELS``), or pixels as a tensor or NumPy array shaped ``H x W``,
            ``C x H x W`` or ``N x C x H x W``: uint8 0..255, or floats in ``[0, input_max]``.
        input_max: The value of a white pixel in float pixels; default ``INPUT_MAX``, the
            training data's own scale (pass 1.0 for pixels in [0, 1]).

    Returns:
        ``N x CHANNELS x IMAGE_SIZE x IMAGE_SIZE`` float32 (N = 1 for one image).
    """
    return to_model_input(
        image, channels=CHANNELS, image_size=IMAGE_SIZE, mean=MEAN, std=STD, input_max=input_max
    )


class Preprocess(nn.Module):
    """``preprocess`` as a module, as torchvision's ``weights.transforms()`` is one: one image
    gives ``CHANNELS x IMAGE_SIZE x IMAGE_SIZE`` (a ``Dataset``'s ``transform``, batched by a
    ``DataLoader``), an ``N x C x H x W`` batch gives ``N x ...``."""

    def __init__(self, *, input_max: float = INPUT_MAX) -> None:
        super().__init__()
        self.input_max = input_max

    def forward(self, image: Any) -> torch.Tensor:
        batch = preprocess(image, input_max=self.input_max)
        return batch if getattr(image, "ndim", None) == 4 else batch[0]

    def extra_repr(self) -> str:
        return f"size={IMAGE_SIZE}, resize={RESIZE}, mean={MEAN}, std={STD}"


def transforms(*, input_max: float = INPUT_MAX) -> Preprocess:
    """What training did to every image, as torchvision's ``weights.transforms()``, e.g.
    ``ImageFolder(root, transform=transforms())``."""
    return Preprocess(input_max=input_max)'''

# The names the preprocessing part defines, besides its constants and the transform functions.
PREPROCESS_NAMES = ("preprocess", "Preprocess", "transforms", "META")
