"""Study configuration: a study TOML file -> a validated, frozen :class:`StudyConfig`.

Every tunable default of nin-search lives in this file and in :mod:`nin_search.config_space`
(searchable values, the architecture space and the reference network; its types are re-exported
here). A study file only needs the keys it changes: a key left out takes its ``StudyConfig``
default. :func:`default_config` is the embedded default study (digits, runs on a laptop CPU),
the same but for three keys (``study_template.left_out_defaults`` lists them). The names a
choice accepts come from :mod:`nin_search.vocabulary`, where the samplers' and pruners' defaults
sit with their factories.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import typing
from pathlib import Path
from typing import Literal

import tomllib
from pydantic import BaseModel, Field, ValidationError, model_validator

from nin_search.config_space import (
    FROZEN,
    FloatParam,
    FloatRange,
    IntParam,
    IntRange,
    SpaceConfig,
    check_positive,
    choices_of,
    some_of,
)
from nin_search.errors import UserError
from nin_search.records import ABLATION_SUFFIX, LATENCY_MS, MACS, PARAMS, is_ablation_study_name
from nin_search.vocabulary import (
    DATASETS,
    OBJECTIVES,
    OPTIMIZERS,
    PRECISIONS,
    PRUNER_FACTORIES,
    SAMPLER_FACTORIES,
    is_rate,
)

__all__ = [
    "NATIVE_IMAGE_SIZES",
    "PRUNERS",
    "RETRAIN_EPOCHS_PER_SEARCH_EPOCH",
    "SAMPLERS",
    "WARMUP_FRACTION",
    "AblationConfig",
    "AugmentConfig",
    "CostConfig",
    "DataConfig",
    "FloatRange",
    "IntRange",
    "OptunaConfig",
    "SpaceConfig",
    "StudyConfig",
    "StudySection",
    "TrainConfig",
    "cache_dir",
    "default_config",
    "downsampled_size",
    "load_study_config",
    "shipped_studies",
    "study_file_path",
    "torchvision_root",
]

SAMPLERS, PRUNERS = tuple(SAMPLER_FACTORIES), tuple(PRUNER_FACTORIES)  # vocabulary's tables
DEFAULT_STORAGE = "sqlite:///nin_search.db"
# Storage and workers (not study-file keys; nin_search.storage and nin_search.study use them).
HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # seconds without a heartbeat before a trial counts as dead (>= 2x interval)
MAX_RETRY = 2  # times a trial killed by a crash is retried with the same parameters
SQLITE_TIMEOUT = 30  # seconds a SQLite writer waits on a lock before failing
CONNECT_TIMEOUT = 10  # seconds to reach a PostgreSQL server
STORAGE_ATTEMPTS = 6  # tries to open a storage whose schema another process is creating
CREATION_WAIT = 10.0  # seconds to wait for a study that another process is creating
MAX_FAILURES_IN_A_ROW = 5  # a worker stops after this many failed trials in a row
MAX_SEED = 2**32 - 1  # samplers and numpy take 32-bit seeds
RETRAIN_EPOCHS_PER_SEARCH_EPOCH = 3  # `nin-search train`: by default 3x a trial's epochs
WARMUP_FRACTION = 0.05  # of all steps, cosine schedule: linear warm-up, then decay to 0
SCHEDULE = "cosine"  # learning-rate schedule of trials and of `nin-search train` (SCHEDULES)
MAX_STUDY_NAME = 200  # characters in a study name (Optuna stores up to 512)
DASHBOARD_HOST, DASHBOARD_PORT = "127.0.0.1", 8080  # where `nin-search dashboard` listens
# optimize notes a class holding this many times its even share of the validation images (or,
# with 2 or 3 classes, over halfway from its even share to all of them)
IMBALANCE_RATIO = 2.0
# The study files that ship with nin-search (package data; `studies/` in the repository).
SHIPPED_STUDIES_DIR = Path(__file__).parent / "studies"


def cache_dir() -> Path:
    """``$NIN_SEARCH_CACHE``, else ``$XDG_CACHE_HOME/nin-search``, else ``~/.cache/nin-search``:
    decoded image folders, and (under ``datasets/``) torchvision datasets with no ``root``."""
    if os.environ.get("NIN_SEARCH_CACHE"):
        return Path(os.environ["NIN_SEARCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nin-search"


def torchvision_root() -> Path:
    """Where a torchvision dataset without ``data.root`` is read from or downloaded to."""
    return cache_dir() / "datasets"


_Optimizers = some_of(OPTIMIZERS)
_Objectives = some_of(OBJECTIVES)
# Side of the images each dataset ships with (pixels); imagefolder images are resized to 32
# unless data.image_size says otherwise.
NATIVE_IMAGE_SIZES = {
    "digits": 8,
    "imagefolder": 32,
    "cifar10": 32,
    "cifar100": 32,
    "mnist": 28,
    "fashion-mnist": 28,
    "svhn": 32,
}


class _Frozen(BaseModel):
    model_config = FROZEN  # as every section of config_space


class CostConfig(_Frozen):
    """Hard limits (a trial that breaks one is stopped before training) and how latency is
    measured (on the study's device, median of several timed forward passes)."""

    max_params: int | None = Field(None, ge=1)  # parameters
    max_macs: int | None = Field(None, ge=1)  # multiply-accumulates per image
    max_latency_ms: float | None = Field(None, gt=0)  # milliseconds per forward pass
    latency_batch_size: int = Field(1, ge=1)  # images per timed forward pass
    latency_runs: int = Field(20, ge=3)  # timed passes (after 3 warm-up passes); median

    @property
    def limits(self) -> dict[str, float]:
        """Cost name -> limit, for the limits that are set."""
        limits = {PARAMS: self.max_params, MACS: self.max_macs, LATENCY_MS: self.max_latency_ms}
        return {name: limit for name, limit in limits.items() if limit is not None}


class StudySection(_Frozen):
    name: str = Field("digits", min_length=1, max_length=MAX_STUDY_NAME)
    seed: int = Field(0, ge=0, le=MAX_SEED)  # sampler seed; trial seeds derive from it
    n_trials: int = Field(30, ge=1)  # target number of finished trials (a re-run resumes)
    timeout: float | None = Field(None, gt=0)  # seconds for one `optimize` run; None = no limit
    # What the search optimises: "accuracy" first, then any costs to minimise ("params",
    # "macs", "latency_ms"); more than one makes a multi-objective study with a Pareto front.
    objectives: _Objectives = ["accuracy"]
    keep_weights: int = Field(3, ge=0)  # trained weights kept for the best k trials (+ baselines)
    baselines: bool = True  # enqueue the NIN-shaped and all-plain reference trials at creation
    # The first random_trials trials are drawn uniformly at random (then the sampler takes
    # over): the unbiased sample the design-space verdict compares plain vs MLP conv on.
    random_trials: int = Field(10, ge=0)
    # The pruner judges random trials too (benchmarks/pruning.py: 3.1x fewer epochs on the
    # digits study at -0.2 points); the design-space verdict then compares the random trials at
    # the first epoch it stopped one at. False trains them in full (compares whole runs).
    prune_random_trials: bool = True

    @model_validator(mode="after")
    def _check_name(self) -> StudySection:
        if not self.name.strip():
            raise ValueError("study.name is blank; give the study a name")
        if is_ablation_study_name(self.name):
            raise ValueError(
                f"study.name {self.name!r} ends in {ABLATION_SUFFIX!r}, which names the ablation "
                f"runs of study {self.name.removesuffix(ABLATION_SUFFIX)!r}; choose another name"
            )
        return self


class AugmentConfig(_Frozen):
    """``[data.augment]``: batched augmentation on the training device (train split only)."""

    crop_padding: int = Field(0, ge=0)  # pixels of zero padding before a random crop; 0 = off
    flip: bool = False  # random horizontal flip (off for digits: a flipped 3 is not a 3)


class DataConfig(_Frozen):
    dataset: Literal[DATASETS] = "digits"  # type: ignore[valid-type]
    # imagefolder: a folder with train/ (and optionally test/) in ImageFolder layout;
    # torchvision datasets: where they are (or will be downloaded). Relative paths are
    # resolved against the study file's folder.
    root: str | None = None
    download: bool = False  # torchvision datasets only; needs internet
    image_size: int | None = Field(None, ge=4, le=1024)  # pixels; None = the dataset's own
    val_fraction: float = Field(0.2, gt=0.0, lt=0.9)  # carved from train, stratified
    split_seed: int = Field(
        0, ge=0, le=MAX_SEED
    )  # fixed: the validation split never moves between runs
    augment: AugmentConfig = AugmentConfig()

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.dataset == "imagefolder" and not self.root:
            raise ValueError(
                "dataset 'imagefolder' needs data.root = 'path/to/folder' (holding train/)"
            )
        return self

    @property
    def resolved_image_size(self) -> int:
        return self.image_size or NATIVE_IMAGE_SIZES[self.dataset]


def downsampled_size(size: int) -> int:
    """Side after one 3x3/2 pooling with padding 1 (what every stage but the last does)."""
    return (size - 1) // 2 + 1


class TrainConfig(_Frozen):
    """``[train]``: how each trial trains (a list or a range is searched, a scalar is fixed);
    also the defaults of :class:`nin_search.train.TrainSettings` and ``evaluate``."""

    epochs: int = Field(8, ge=1)  # epochs per trial (the pruner's max resource)
    learning_rate: FloatParam = FloatRange(low=1e-3, high=0.2, log=True)  # peak LR
    weight_decay: FloatParam = FloatRange(low=1e-6, high=1e-3, log=True)
    optimizer: _Optimizers = list(OPTIMIZERS)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)  # SGD (Nesterov) momentum
    batch_size: IntParam = [32, 64, 128]  # images per step
    label_smoothing: FloatParam = [0.0, 0.1]
    eval_batch_size: int = Field(1024, ge=1)  # images per evaluation step
    device: str = "auto"  # auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps
    # auto: bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere; fp32; bf16 (anywhere)
    precision: Literal[PRECISIONS] = "auto"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        check_positive("train.learning_rate", self.learning_rate)
        check_positive("train.weight_decay", self.weight_decay, allow_zero=True)
        check_positive("train.batch_size", self.batch_size)
        for value in choices_of(self.label_smoothing):
            if not is_rate(value):
                raise ValueError(f"train.label_smoothing must be in [0, 1), but got {value}")
        return self


class OptunaConfig(_Frozen):
    sampler: Literal[SAMPLERS] = "tpe"  # type: ignore[valid-type]
    pruner: Literal[PRUNERS] = "percentile"  # type: ignore[valid-type]
    # Keyword arguments for the pruner's constructor, e.g. { n_startup_trials = 5 }.
    pruner_options: dict[str, int | float | bool] = {}
    storage: str = DEFAULT_STORAGE  # any Optuna RDB URL; the CLI's --storage wins
    # Optuna artifact store (trained weights) folder; default: beside the SQLite file
    # ("nin_search.db" -> "nin_search-artifacts"), else ./nin_search-artifacts.
    artifact_dir: str | None = None

    @model_validator(mode="after")
    def _check(self) -> OptunaConfig:
        for key, value in self.pruner_options.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(
                    f"optuna.pruner_options.{key} must be a finite number, but got {value}"
                )
        return self


class AblationConfig(_Frozen):
    """The paired ablation of the winner (``nin-search ablate``): per stage, the original
    network, the stage flipped (MLP conv <-> plain) and the flip at equal parameters, each
    trained with the same seeds, everything else identical."""

    after_search: bool = False  # run the ablation at the end of `optimize`
    top: int = Field(1, ge=1)  # ablate the best k trials
    seeds: int = Field(3, ge=1)  # seeds per variant (paired across variants)


class StudyConfig(_Frozen):
    """A study file, validated and frozen: its ``[study]``, ``[data]``, ``[space]``,
    ``[train]``, ``[cost]``, ``[optuna]`` and ``[ablation]`` sections (a section or key left out
    takes its default). Read one with :func:`load_study_config`; :func:`default_config` is the
    embedded digits study."""

    study: StudySection = StudySection()
    data: DataConfig = DataConfig()
    space: SpaceConfig = SpaceConfig()
    train: TrainConfig = TrainConfig()
    optuna: OptunaConfig = OptunaConfig()
    cost: CostConfig = CostConfig()
    ablation: AblationConfig = AblationConfig()

    @property
    def objectives(self) -> list[str]:
        return list(self.study.objectives)

    @property
    def multi_objective(self) -> bool:
        return len(self.study.objectives) > 1

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        objectives = self.study.objectives
        if objectives[0] != "accuracy" or len(set(objectives)) != len(objectives):
            raise ValueError(
                f"study.objectives must start with 'accuracy' and name each cost once, but got "
                f"{objectives}; e.g. objectives = ['accuracy', 'params']"
            )
        if self.multi_objective and self.optuna.pruner not in ("dominated", "none"):
            raise ValueError(
                f"optuna.pruner: Optuna's pruners do not support multi-objective studies, but got "
                f"{self.optuna.pruner!r}; use pruner = 'dominated' (nin-search's) or 'none'"
            )
        if not self.multi_objective and self.optuna.pruner == "dominated":
            raise ValueError(
                "optuna.pruner: 'dominated' is for multi-objective studies; add a cost to "
                "study.objectives or use pruner = 'percentile' (the default)"
            )
        size = self.data.resolved_image_size
        for stage in range(self.space.max_stages - 1):
            if size < 2:
                raise ValueError(
                    f"space.num_stages: {self.data.resolved_image_size}x"
                    f"{self.data.resolved_image_size} images allow at most {stage + 1} stages "
                    f"(each stage but the last halves the size), but got "
                    f"{self.space.max_stages}; lower num_stages or raise data.image_size"
                )
            size = downsampled_size(size)
        size, kernel = self.data.resolved_image_size, max(self.space.kernel_sizes)
        if kernel > size:
            raise ValueError(
                f"space.kernel_sizes: a {kernel}x{kernel} kernel is larger than the {size}x{size} "
                f"images (it would mostly multiply padding); use kernels <= {size}"
            )
        return self

    def space_fingerprint(self) -> dict:
        """What must not change between runs of one study (the search space and data)."""
        return {
            "space": self.space.model_dump(mode="json"),
            "train": self.train.model_dump(mode="json", exclude={"device", "eval_batch_size"}),
            "data": self.data.model_dump(mode="json", exclude={"root", "download"}),
            "objectives": {"objectives": list(self.study.objectives)},
            "cost": self.cost.model_dump(mode="json"),
        }


def default_config() -> StudyConfig:
    """The embedded default study (``studies/digits.toml``): handwritten digits, a second or two
    per trial on a CPU; three stages, 20 random trials first, and the paired ablation of the
    winner at the end, so that one ``nin-search optimize`` answers the question."""
    return StudyConfig(
        study=StudySection(random_trials=20),
        space=SpaceConfig(num_stages=3),
        ablation=AblationConfig(after_search=True),
    )


_UNION_TAGS = ("int", "float", "bool", "str", "IntRange", "FloatRange")


def _location(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _UNION_TAGS or "[" in part:
            continue  # which member of a union pydantic tried: noise for the user
        else:
            text += f".{part}" if text else part
    return text


def _member_of_input(error: dict) -> bool:
    """Whether the error comes from the union member of the input's own kind: a list's from
    ``list[...]``, a table's from a range (not "Input should be a valid integer")."""
    tags = [part for part in error["loc"] if isinstance(part, str) and "[" in part]
    tags += [part for part in error["loc"] if part in _UNION_TAGS]
    if isinstance(error.get("input"), list):
        return any("list[" in tag for tag in tags)
    if isinstance(error.get("input"), dict):
        return any("Range" in tag for tag in tags)
    return True


def _keys_of(table: list[str]) -> list[str]:
    """The keys a study file accepts in ``table`` (``["space"]``, ``["data", "augment"]``;
    a range's ``low``, ``high`` and ``log`` for a searchable value), for spelling hints."""
    models: list[type[BaseModel]] = [StudyConfig]
    for part in table:
        found = []
        for model in models:
            field = model.model_fields.get(part)
            if field is None:
                continue
            annotation = field.annotation
            members = typing.get_args(annotation) or (annotation,)
            for member in (arg for m in members for arg in (typing.get_args(m) or (m,))):
                if isinstance(member, type) and issubclass(member, BaseModel):
                    found.append(member)
        models = found
    return sorted({name for model in models for name in model.model_fields})


def _format_validation_error(error: ValidationError) -> str:
    """One line for the most specific of pydantic's errors (unions report one per member)."""
    errors = error.errors()
    field = errors[0]["loc"][:2]
    same_field = [e for e in errors if e["loc"][:2] == field]
    same_field = [e for e in same_field if _member_of_input(e)] or same_field
    custom = [e for e in same_field if e["type"] == "value_error"]
    unknown = [e for e in same_field if e["type"] == "extra_forbidden"]  # a typo: say it first
    best = (custom or unknown or [max(same_field, key=lambda e: len(e["loc"]))])[0]
    location = _location(best["loc"])
    if best["type"] == "extra_forbidden":
        *table, key = location.split(".")
        close = difflib.get_close_matches(key, _keys_of(table), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return (
            f"unknown key '{location}' ({hint}check the spelling against the commented study "
            "file `nin-search init` writes)"
        )
    if best["type"] == "too_short" and best.get("input") == []:
        return f"{location} is an empty list; list at least one choice"
    message = best["msg"].removeprefix("Value error, ")
    if best["type"] != "value_error" and "input" in best:
        message = f"{message}, but got {_toml_text(best['input'])}"
    if location and message.startswith(f"{location.split('.')[0]}."):
        return message  # the message names its key already ("space.widths must be ...")
    return f"{location}: {message}" if location else message


def _toml_text(value: object) -> str:
    """A value as the study file spells it: ``true``, ``"16"``, ``[1, 2]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_text(item) for item in value) + "]"
    return repr(value)


def shipped_studies() -> list[str]:
    """Names of the study files that ship with nin-search (``digits``, ``cifar10-mini``, ...)."""
    return sorted(path.stem for path in SHIPPED_STUDIES_DIR.glob("*.toml"))


def study_file_path(name_or_path: str | Path) -> Path:
    """A study file: ``name_or_path`` when it is a file, else the shipped study of that name.

    A shipped study is found by its bare name (``digits``, or ``digits.toml``) from any folder;
    a local file of that name wins, ``NAME.toml`` too (``nin-search init -o digits.toml``, then
    ``optimize digits``, runs the file written); a local folder of that name does not.

    Raises:
        UserError: When neither exists (the message lists the shipped names).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    local = path.with_name(f"{path.name}.toml") if path.suffix != ".toml" and path.name else None
    if local is not None and local.is_file():
        return local
    shipped = SHIPPED_STUDIES_DIR / f"{path.name.removesuffix('.toml')}.toml"
    if len(path.parts) == 1 and shipped.is_file():
        return shipped  # before a folder of that name: ./mnist/ may hold its images
    if path.is_dir():
        raise UserError(
            f"{str(path)!r} is a folder; pass a study file (.toml), or write one with "
            "`nin-search init -o my-study.toml`"
        )
    raise UserError(
        f"study file {str(path)!r} not found; pass a path to a study file, a shipped study's "
        f"name ({', '.join(shipped_studies())}), or write one with `nin-search init -o "
        "my-study.toml`"
    )


def _check_shipped_data(path: Path, config: StudyConfig) -> None:
    """A shipped image-folder study says what is missing, and where to get it, in one line."""
    if path.resolve().parent != SHIPPED_STUDIES_DIR.resolve():
        return
    root = Path(config.data.root or "")
    if config.data.dataset != "imagefolder" or root.is_dir():
        return
    raise UserError(
        f"shipped study {path.stem!r} needs its image folder {str(root)!r} (train/<class>/*.jpg "
        "and test/<class>/*.jpg), which is not here: it comes with a nin-search repository "
        "checkout (shared/data/ beside the repository), so run from there; or run "
        "`nin-search optimize cifar10` (downloads CIFAR-10), or make a study for your own "
        "images: nin-search init --dataset imagefolder --root DIR -o my-study.toml"
    )


def load_study_config(path: str | Path) -> StudyConfig:
    """Reads a study TOML file and validates it.

    Args:
        path: The study file, or the name of a shipped study (see :func:`study_file_path`).

    Returns:
        The frozen config; ``data.root`` is made absolute (relative to the file's folder).

    Raises:
        UserError: If the file is missing, is not valid TOML, or holds a bad value; or a
            shipped image-folder study's images are not where it expects them.
    """
    path = study_file_path(path)
    try:
        # utf-8-sig: a byte-order mark, as some editors save it, is not part of the TOML.
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid TOML ({error}); fix the syntax") from None
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as error:
        raise UserError(f"{path}: {_format_validation_error(error)}") from None
    root = config.data.root
    if root and not Path(root).expanduser().is_absolute():
        root = str((path.parent / Path(root).expanduser()).resolve())
        config = config.model_copy(update={"data": config.data.model_copy(update={"root": root})})
    _check_shipped_data(path, config)
    return config
