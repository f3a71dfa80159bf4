"""Study configuration: a study TOML file -> a validated, frozen :class:`StudyConfig`.

Every tunable default of nin-search lives in this file. A study file only needs the keys it
changes; ``StudyConfig()`` *is* the embedded default study (digits, runs on a laptop CPU).

A searchable value is written in TOML as one of:

* a scalar (``dropout = 0.3``): fixed, not searched;
* a list (``widths = [32, 64, 128]``): a categorical choice;
* a table (``learning_rate = { low = 1e-3, high = 0.1, log = true }``): a range
  (an integer range when both bounds are integers).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nin_search.errors import UserError

__all__ = [
    "DATASETS",
    "NATIVE_IMAGE_SIZES",
    "OBJECTIVES",
    "PRUNERS",
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
    "choices_of",
    "default_config",
    "downsampled_size",
    "load_study_config",
    "shipped_studies",
    "study_file_path",
]

DATASETS = ("digits", "imagefolder", "cifar10", "cifar100", "mnist", "fashion-mnist", "svhn")
SAMPLERS = ("tpe", "random", "nsgaii", "gp")
PRUNERS = (
    "median",
    "dominated",
    "percentile",
    "hyperband",
    "successive-halving",
    "threshold",
    "patient",
    "wilcoxon",
    "none",
)
ACTIVATIONS = ("relu", "gelu", "silu")
OBJECTIVES = ("accuracy", "params", "macs", "latency_ms")  # accuracy is maximised, costs minimised
DEFAULT_STORAGE = "sqlite:///nin_search.db"
MAX_SEED = 2**32 - 1  # samplers and numpy take 32-bit seeds
MAX_LAYER_PARAMETERS = 10**9  # weights of one conv layer (4 GB as float32): past it, no trial fits
MAX_MLP_DEPTH = 64  # 1x1 convs in one MLP conv stage (NIN uses 2)
WARMUP_FRACTION = 0.05  # of all steps, cosine schedule: linear warm-up, then decay to 0
# The study files that ship with nin-search (package data; `studies/` in the repository).
SHIPPED_STUDIES_DIR = Path(__file__).parent / "studies"
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
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntRange(_Frozen):
    """An integer range ``low..high`` (both inclusive), optionally log-scaled."""

    low: int
    high: int
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low must be <= high, but got low={self.low}, high={self.high}")
        if self.log and self.low < 1:
            raise ValueError(f"a log range needs low >= 1, but got low={self.low}")
        return self


class FloatRange(_Frozen):
    """A float range ``[low, high]``, optionally log-scaled."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"bounds must be finite, but got low={self.low}, high={self.high}")
        if self.low > self.high:
            raise ValueError(f"low must be <= high, but got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, but got low={self.low}")
        return self


NonEmpty = Annotated[list, Field(min_length=1)]
IntParam = int | Annotated[list[int], Field(min_length=1)] | IntRange
FloatParam = float | Annotated[list[float], Field(min_length=1)] | FloatRange


def choices_of(param: int | float | list | IntRange | FloatRange) -> list:
    """Every value a searchable parameter can take (ranges give their two bounds)."""
    if isinstance(param, (IntRange, FloatRange)):
        return [param.low, param.high]
    if isinstance(param, list):
        return list(param)
    return [param]


def _check_positive(name: str, param: IntParam | FloatParam, *, allow_zero: bool = False) -> None:
    for value in choices_of(param):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, but got {value}")
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must be {bound}, but got {value}")


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
        limits = {"params": self.max_params, "macs": self.max_macs}
        limits["latency_ms"] = self.max_latency_ms
        return {name: limit for name, limit in limits.items() if limit is not None}


class StudySection(_Frozen):
    name: str = Field("digits", min_length=1, max_length=200)
    seed: int = Field(0, ge=0, le=MAX_SEED)  # sampler seed; trial seeds derive from it
    n_trials: int = Field(30, ge=1)  # target number of finished trials (a re-run resumes)
    timeout: float | None = Field(None, gt=0)  # seconds for one `optimize` run; None = no limit
    # What the search optimises: "accuracy" first, then any costs to minimise ("params",
    # "macs", "latency_ms"); more than one makes a multi-objective study with a Pareto front.
    objectives: Annotated[list[Literal[OBJECTIVES]], Field(min_length=1)] = ["accuracy"]  # type: ignore[valid-type]
    keep_weights: int = Field(3, ge=0)  # trained weights kept for the best k trials (+ baselines)
    baselines: bool = True  # enqueue the NIN-shaped and all-plain reference trials at creation
    # The first random_trials trials are drawn uniformly at random (then the sampler takes
    # over): the unbiased sample the design-space verdict compares plain vs MLP conv on.
    random_trials: int = Field(10, ge=0)
    # Random trials are trained in full by default (the pruner still learns from their
    # curves): the design-space verdict then compares complete short runs, not epoch 2.
    prune_random_trials: bool = False


class AugmentConfig(_Frozen):
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


class SpaceConfig(_Frozen):
    """The architecture search space. Parameter names carry the stage index (``s0_type``)."""

    num_stages: IntParam = [2, 3]
    stage_types: Annotated[list[Literal["plain", "mlp"]], Field(min_length=1)] = ["plain", "mlp"]
    kernel_sizes: Annotated[list[int], Field(min_length=1)] = [3, 5]  # odd, "same" padding
    widths: IntParam = [16, 32, 64]  # out channels of each stage's k x k conv
    mlp_depth: IntParam = IntRange(low=1, high=2)  # number of 1x1 convs in an MLP stage
    mlp_widths: IntParam = [16, 32, 64]  # out channels of each 1x1 conv
    pool: Annotated[list[Literal["max", "avg"]], Field(min_length=1)] = ["max"]  # 3x3/2
    dropout: FloatParam = FloatRange(low=0.0, high=0.5)  # after each downsampling
    head: Annotated[list[Literal["nin", "linear"]], Field(min_length=1)] = ["nin", "linear"]
    batch_norm: Annotated[list[bool], Field(min_length=1)] = [True]
    activation: Annotated[list[Literal[ACTIVATIONS]], Field(min_length=1)] = ["relu"]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check(self) -> SpaceConfig:
        _check_positive("space.num_stages", self.num_stages)
        _check_positive("space.widths", self.widths)
        _check_positive("space.mlp_depth", self.mlp_depth)
        _check_positive("space.mlp_widths", self.mlp_widths)
        for kernel_size in self.kernel_sizes:
            if kernel_size < 1 or kernel_size % 2 == 0:
                raise ValueError(
                    f"space.kernel_sizes must be odd and >= 1 ('same' padding), "
                    f"but got {kernel_size}"
                )
        for rate in choices_of(self.dropout):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"space.dropout must be in [0, 1), but got {rate}")
        depth = max(choices_of(self.mlp_depth))
        if depth > MAX_MLP_DEPTH:
            raise ValueError(f"space.mlp_depth must be <= {MAX_MLP_DEPTH}, but got {depth}")
        self._check_layer_size()
        return self

    def _check_layer_size(self) -> None:
        """The largest conv layer the space allows must fit in memory (else every trial that
        draws it fails, and a study of such trials finishes with nothing)."""
        width = max(choices_of(self.widths))
        channels = max(width, max(choices_of(self.mlp_widths)), 3)  # widest input of a layer
        kernel = max(self.kernel_sizes)
        largest = max(
            kernel * kernel * channels * width, channels * max(choices_of(self.mlp_widths))
        )
        if largest > MAX_LAYER_PARAMETERS:
            raise ValueError(
                f"space.widths / mlp_widths / kernel_sizes allow a layer of {largest:,} "
                f"weights (a {kernel}x{kernel} conv of {channels} -> {width} channels), over "
                f"{MAX_LAYER_PARAMETERS:,}: no trial could train it; use smaller values"
            )

    @property
    def max_stages(self) -> int:
        return max(choices_of(self.num_stages))


class TrainConfig(_Frozen):
    epochs: int = Field(8, ge=1)  # epochs per trial (the pruner's max resource)
    learning_rate: FloatParam = FloatRange(low=1e-3, high=0.2, log=True)  # peak LR
    weight_decay: FloatParam = FloatRange(low=1e-6, high=1e-3, log=True)
    optimizer: Annotated[list[Literal["sgd", "adamw"]], Field(min_length=1)] = ["sgd", "adamw"]
    momentum: float = Field(0.9, ge=0.0, lt=1.0)  # SGD (Nesterov) momentum
    batch_size: IntParam = [32, 64, 128]  # images per step
    label_smoothing: FloatParam = [0.0, 0.1]
    eval_batch_size: int = Field(1024, ge=1)  # images per evaluation step
    device: str = "auto"  # auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        _check_positive("train.learning_rate", self.learning_rate)
        _check_positive("train.weight_decay", self.weight_decay, allow_zero=True)
        _check_positive("train.batch_size", self.batch_size)
        for value in choices_of(self.label_smoothing):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"train.label_smoothing must be in [0, 1), but got {value}")
        return self


class OptunaConfig(_Frozen):
    sampler: Literal[SAMPLERS] = "tpe"  # type: ignore[valid-type]
    pruner: Literal[PRUNERS] = "median"  # type: ignore[valid-type]
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
                "study.objectives or use pruner = 'median'"
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


def _format_validation_error(error: ValidationError) -> str:
    """One line for the most specific of pydantic's errors (unions report one per member)."""
    errors = error.errors()
    field = errors[0]["loc"][:2]
    same_field = [e for e in errors if e["loc"][:2] == field]
    custom = [e for e in same_field if e["type"] == "value_error"]
    best = custom[0] if custom else max(same_field, key=lambda e: len(e["loc"]))
    location = _location(best["loc"])
    if best["type"] == "extra_forbidden":
        return (
            f"unknown key '{location}' (check the spelling against the commented study file "
            "`nin-search init` writes)"
        )
    message = best["msg"].removeprefix("Value error, ")
    if best["type"] != "value_error" and "input" in best:
        message = f"{message}, but got {best['input']!r}"
    return f"{location}: {message}" if location else message


def shipped_studies() -> list[str]:
    """Names of the study files that ship with nin-search (``digits``, ``cifar10-mini``, ...)."""
    return sorted(path.stem for path in SHIPPED_STUDIES_DIR.glob("*.toml"))


def study_file_path(name_or_path: str | Path) -> Path:
    """A study file: ``name_or_path`` when it is a file, else the shipped study of that name.

    A shipped study is found by its bare name (``digits``, or ``digits.toml``) from any folder.

    Raises:
        UserError: When neither exists (the message lists the shipped names).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_STUDIES_DIR / f"{path.name.removesuffix('.toml')}.toml"
    if len(path.parts) == 1 and shipped.is_file():
        return shipped
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
