"""nin-search: when do MLP conv (Network-in-Network) layers beat plain conv layers?

Public API::

    from nin_search import ArchSpec, StageSpec, suggest_arch, build_model, MLPConv2d, presets
"""

__version__ = "0.1.0"

from nin_search import presets
from nin_search.config import StudyConfig, default_config, load_study_config
from nin_search.errors import UserError
from nin_search.layers import MLPConv2d
from nin_search.model import build_model, count_macs, count_params
from nin_search.space import suggest_arch, suggest_hyperparameters
from nin_search.spec import ArchSpec, Hyperparameters, SpecError, StageSpec

__all__ = [
    "ArchSpec",
    "Hyperparameters",
    "MLPConv2d",
    "SpecError",
    "StageSpec",
    "StudyConfig",
    "UserError",
    "__version__",
    "build_model",
    "count_macs",
    "count_params",
    "default_config",
    "load_study_config",
    "presets",
    "suggest_arch",
    "suggest_hyperparameters",
]
