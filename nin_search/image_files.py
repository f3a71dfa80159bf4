"""Image folders on disk: which files are a split's images, and which class each is.

The layout is torchvision's ``ImageFolder`` (``<split>/<class>/**/<image>``, classes sorted by
name, files in sorted order), read safely:

* Every image counts once, by its real path: a symbolic link to an image or a folder that is
  already read adds nothing, and one real image reached from two classes is an error.
* A link that leads back into a folder it sits in (``train/cat/up -> ..``) is a loop: an
  error that names it (followed, it would repeat images and mix classes and splits).
* A dangling link, or a file with an image extension that is not a regular file (a FIFO,
  a device), is an error that names it.
* Hidden entries (``.ipynb_checkpoints``, ``.DS_Store``, macOS ``._photo.jpg`` files) are
  neither classes nor images.
* A class is named by its folder's name in composed Unicode (NFC): a folder written on macOS
  (decomposed, NFD) names the same class as on Linux.

No torch, no optuna here.
"""

from __future__ import annotations

import contextlib
import os
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nin_search.errors import UserError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFiles",
    "class_labels",
    "composed",
    "decode_failure",
    "find_images",
    "scan_image_folder",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageFiles:
    """One split's images: ``(path, label)`` in ImageFolder order, and the class names."""

    classes: tuple[str, ...]
    samples: tuple[tuple[str, int], ...]
    real_paths: tuple[str, ...]  # each sample's real path (links resolved), same order


def decode_failure(error: Exception, path: str | Path) -> str:
    """Why the image ``path`` could not be decoded, in one short line: the error's type and
    message (without the path, which the caller's message names)."""
    message = " ".join(str(error).replace(repr(str(path)), "").split())
    message = message if len(message) <= 160 else f"{message[:157]}..."
    return f"{error.__class__.__name__}: {message}" if message else error.__class__.__name__


@contextlib.contextmanager
def decoding(path: str | Path, *, too_large: str, undecodable: str) -> Iterator[None]:
    """Pillow's errors while the body decodes image ``path``, as one :class:`UserError` line
    that ends with what to do: ``too_large`` for a decompression bomb, ``undecodable`` for a
    file that is no image (or a broken one)."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except Image.DecompressionBombError as error:
        raise UserError(
            f"image {str(path)!r} is too large to decode safely ({error}); {too_large}"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise UserError(
            f"cannot decode image {str(path)!r} ({decode_failure(error, path)}); {undecodable}"
        ) from None


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _entries(folder: str | Path) -> list[os.DirEntry]:
    try:
        return sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        raise UserError(f"cannot read image folder {str(folder)!r} ({error.strerror})") from None


class _Scan:
    """Walks class folders, following links; each real image once, each real folder once
    per class (so no chain of links can make it walk forever)."""

    def __init__(self) -> None:
        self.samples: list[tuple[str, int]] = []
        self.real_paths: list[str] = []
        self.owner: dict[str, str] = {}  # real path of an image -> its class
        self.read_folders: set[str] = set()  # real paths of the folders read for this class

    def folder(self, folder: str, real: str, name: str, label: int) -> None:
        if real in self.read_folders:
            return  # a second link to a folder already read
        self.read_folders.add(real)
        folders = []
        entries = _entries(folder)
        for entry in entries:
            if _hidden(entry.name):
                continue
            target = os.path.realpath(entry.path)
            if entry.is_symlink() and not os.path.exists(entry.path):
                raise UserError(
                    f"{entry.path!r} is a dangling symbolic link (to "
                    f"{os.readlink(entry.path)!r}); remove it or make it point to an image"
                )
            if entry.is_dir():
                if entry.is_symlink() and _is_within(real, target):
                    raise UserError(
                        f"symbolic link {entry.path!r} leads back to {target!r}, a folder it "
                        "is in (a loop: its images would count again, in other classes and "
                        "splits); remove the link"
                    )
                folders.append((entry.path, target))
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                self.image(entry, target, name, label)
        for path, target in folders:  # files first, then sub-folders (ImageFolder's order)
            self.folder(path, target, name, label)

    def image(self, entry: os.DirEntry, real: str, name: str, label: int) -> None:
        if not entry.is_file():
            raise UserError(
                f"{entry.path!r} is not a regular file (a pipe or a device); remove it from "
                "the image folder"
            )
        owner = self.owner.get(real)
        if owner is not None and owner != name:
            raise UserError(
                f"image {real!r} is in class {owner!r} and, through a link ({entry.path!r}), "
                f"in class {name!r}; keep it in one class"
            )
        if owner is None:
            self.owner[real] = name
            self.samples.append((entry.path, label))
            self.real_paths.append(real)


def composed(names: Iterable[str]) -> tuple[str, ...]:
    """Class names in composed Unicode (NFC), the form they are compared in."""
    return tuple(unicodedata.normalize("NFC", name) for name in names)


def _class_names(folder_names: list[str]) -> tuple[str, ...]:
    """Class names: the folder names in Unicode's composed form (NFC), so that a class copied
    from macOS (whose file names are decomposed, NFD) is the same class as on Linux.

    Raises:
        UserError: For two folders whose names differ only in that form.
    """
    names = composed(folder_names)
    if len(set(names)) != len(names):
        twins = sorted({name for name in names if names.count(name) > 1})
        raise UserError(
            f"class folder(s) {twins} appear twice, under names that differ only in how "
            "their accents are encoded (Unicode NFC and NFD); merge each pair into one folder"
        )
    return names


def scan_image_folder(folder: Path) -> ImageFiles:
    """The images of one split folder (``train/`` or ``test/``), in ImageFolder layout.

    Raises:
        UserError: For a folder with no class folders or a class without images, a link
            loop, a dangling link, a special file, or an image in two classes.
    """
    entries = _entries(folder)
    for entry in entries:
        if entry.is_symlink() and not os.path.exists(entry.path) and not _hidden(entry.name):
            raise UserError(
                f"{entry.path!r} is a dangling symbolic link (to {os.readlink(entry.path)!r}); "
                "remove it or make it point to a class folder"
            )
    folder_names = [entry.name for entry in entries if entry.is_dir() and not _hidden(entry.name)]
    classes = _class_names(folder_names)
    scan = _Scan()
    root = os.path.realpath(folder)
    empty = []
    for label, (name, folder_name) in enumerate(zip(classes, folder_names, strict=True)):
        path = os.path.join(folder, folder_name)
        target = os.path.realpath(path)
        if _is_within(root, target):
            raise UserError(
                f"symbolic link {path!r} leads back to {target!r}, a folder it is in (a loop); "
                "remove the link"
            )
        before = len(scan.samples)
        scan.read_folders = set()
        scan.folder(path, target, name, label)
        if len(scan.samples) == before:
            empty.append(name)
    if not classes or empty:
        what = f"class folder(s) {empty} hold no image" if empty else "no class folders"
        raise UserError(
            f"{folder}: no images in ImageFolder layout ({what}; images end in "
            f"{', '.join(IMAGE_EXTENSIONS)}); put images in one sub-folder per class"
        )
    return ImageFiles(classes, tuple(scan.samples), tuple(scan.real_paths))


def class_labels(
    labels: list[int], classes: tuple[str, ...], onto: tuple[str, ...], *, split: str
) -> list[int]:
    """``labels`` (indices into ``classes``) as indices into ``onto``, matched by class name.

    The test split of an image folder may hold a subset of the training classes; its own
    indices would then name the wrong classes.

    Raises:
        UserError: For a class of ``split`` that ``onto`` (the training classes) lacks.
    """
    unknown = [name for name in classes if name not in onto]
    if unknown:
        raise UserError(
            f"{split}/ holds class(es) {unknown} that train/ does not (training classes: "
            f"{list(onto)}); the model cannot predict them: remove them from {split}/ or add "
            "them to train/"
        )
    index = {name: onto.index(name) for name in classes}
    return [index[classes[label]] for label in labels]


def _images_under(folder: Path) -> list[Path]:
    """The image files under ``folder``, read as one class folder of training is (links
    followed, each image once, hidden entries skipped; a loop or a dangling link is an error),
    sorted."""
    scan = _Scan()
    scan.folder(str(folder), os.path.realpath(folder), str(folder), 0)
    return sorted(Path(path) for path, _ in scan.samples)


def find_images(paths: list[Path]) -> list[Path]:
    """Files as given, and the image files under folders (recursively, sorted), read as
    training reads folders: links followed, hidden files and folders skipped, a link loop or a
    dangling link refused.

    Raises:
        UserError: For a path that does not exist, or folders without images.
    """
    found: list[Path] = []
    suffixes = IMAGE_EXTENSIONS
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            images = _images_under(path)
            if not images:
                raise UserError(
                    f"folder {str(path)!r} holds no image files ({', '.join(suffixes)})"
                )
            found += images
        else:
            raise UserError(f"{str(path)!r} not found; pass image files or folders")
    return found
