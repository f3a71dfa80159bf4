"""nin-search: when do MLP conv (Network-in-Network) layers beat plain conv layers?

Public API::

    from nin_search import ArchSpec, StageSpec, suggest_arch, build_model, MLPConv2d, presets

Your own Optuna objective (README "Python API")::

    from nin_search import SpaceConfig, suggest_arch, build_model, TrainSettings, train_on_tensors

The names below are imported on first use (PEP 562), so ``import nin_search`` and
``nin-search --help`` do not load PyTorch or Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "ArchSpec": "nin_search.spec",
    "Hyperparameters": "nin_search.spec",
    "SpecError": "nin_search.spec",
    "StageSpec": "nin_search.spec",
    "StudyConfig": "nin_search.config",
    "default_config": "nin_search.config",
    "load_study_config": "nin_search.study_files",
    "UserError": "nin_search.errors",
    "MLPConv2d": "nin_search.layers",
    "build_model": "nin_search.model",
    "count_macs": "nin_search.model",
    "count_params": "nin_search.model",
    "suggest_arch": "nin_search.space",
    "suggest_hyperparameters": "nin_search.space",
    "FloatRange": "nin_search.config",
    "IntRange": "nin_search.config",
    "SpaceConfig": "nin_search.config",
    "TrainConfig": "nin_search.config",
    "AugmentConfig": "nin_search.config",
    "DeviceData": "nin_search.data",
    "build_optimizer": "nin_search.optimization",
    "build_scheduler": "nin_search.optimization",
    "EpochResult": "nin_search.train",
    "TrainResult": "nin_search.train",
    "TrainSettings": "nin_search.train",
    "Trainer": "nin_search.train",
    "NonFiniteLossError": "nin_search.train",
    "train_on_tensors": "nin_search.train",
    "REQUIRED_USER_ATTRS": "nin_search.records",
}
_SUBMODULES = ("presets", "records")

__all__ = [
    "REQUIRED_USER_ATTRS",
    "ArchSpec",
    "AugmentConfig",
    "DeviceData",
    "EpochResult",
    "FloatRange",
    "Hyperparameters",
    "IntRange",
    "MLPConv2d",
    "NonFiniteLossError",
    "SpaceConfig",
    "SpecError",
    "StageSpec",
    "StudyConfig",
    "TrainConfig",
    "TrainResult",
    "TrainSettings",
    "Trainer",
    "UserError",
    "__version__",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "count_macs",
    "count_params",
    "default_config",
    "load_study_config",
    "presets",
    "records",
    "suggest_arch",
    "suggest_hyperparameters",
    "train_on_tensors",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"nin_search.{name}")
    else:
        raise AttributeError(f"module 'nin_search' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({"__version__", *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs; never runs
    from nin_search import presets, records
    from nin_search.config import (
        AugmentConfig,
        FloatRange,
        IntRange,
        SpaceConfig,
        StudyConfig,
        TrainConfig,
        default_config,
    )
    from nin_search.data import DeviceData
    from nin_search.errors import UserError
    from nin_search.layers import MLPConv2d
    from nin_search.model import build_model, count_macs, count_params
    from nin_search.optimization import build_optimizer, build_scheduler
    from nin_search.records import REQUIRED_USER_ATTRS
    from nin_search.space import suggest_arch, suggest_hyperparameters
    from nin_search.spec import ArchSpec, Hyperparameters, SpecError, StageSpec
    from nin_search.study_files import load_study_config
    from nin_search.train import (
        EpochResult,
        NonFiniteLossError,
        Trainer,
        TrainResult,
        TrainSettings,
        train_on_tensors,
    )
