"""Study configuration: what a study TOML file may hold, as a validated, frozen
:class:`StudyConfig` (:mod:`nin_search.study_files` finds and reads the files).

Every tunable default of nin-search lives in this file and in :mod:`nin_search.config_space`
(searchable values, the architecture space and the reference network; its types are re-exported
here). A study file only needs the keys it changes: a key left out takes its ``StudyConfig``
default. :func:`default_config` is the embedded default study (digits, runs on a laptop CPU),
the same but for three keys (``study_template.left_out_defaults`` lists them). The names a
choice accepts come from :mod:`nin_search.vocabulary`, where the samplers' and pruners' defaults
sit with their factories.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

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
    takes its default). Read one with :func:`nin_search.study_files.load_study_config`;
    :func:`default_config` is the embedded digits study."""

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
