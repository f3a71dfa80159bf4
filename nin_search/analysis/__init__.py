"""When does an MLP conv beat a plain conv? Evidence a reviewer accepts, read from the trials.

Two kinds of evidence, both per stage:

- **Paired ablation** (:func:`get_ablation_info`): the same network with one stage's kind
  changed ("flipped") or changed at equal parameter count ("matched"), trained on the same
  seeds; the mean paired difference with its t-interval and n.
- **Design space** (:func:`get_design_space_info`): randomly sampled trials only, at equal
  epochs, complexity-normalised as Radosavovic et al. 2019 ("On Network Design Spaces for
  Visual Recognition"): a Welch t-interval over the size bins, weighted error EDFs and their
  KS statistic, and the effect per size range.

:func:`get_answer` puts them together per stage, :func:`answer_lines` says it in words, and
:func:`get_consensus_info` pools the ablation effects of several studies (datasets). Every
difference is MLP minus plain conv, in accuracy points. This package reads trials; it never
trains, and nothing here prints. The statistical defaults (confidence, bins,
thresholds) live in one block, :mod:`nin_search.analysis._defaults`.
"""

from nin_search.analysis._ablation import (
    PairedEffect,
    StageAblation,
    find_ablation_study,
    get_ablation_info,
)
from nin_search.analysis._answer import Answer, StageAnswer, answer_lines, get_answer
from nin_search.analysis._consensus import (
    StageConsensus,
    StudyEffect,
    consensus_lines,
    get_consensus_info,
    searched_study_names,
)
from nin_search.analysis._defaults import (
    CONFIDENCE,
    MIN_TRIALS_PER_KIND,
)
from nin_search.analysis._design_space import DesignSpaceEffect, EdfCurve, get_design_space_info
from nin_search.analysis._format import (
    direction,
    effect_text,
    interval_range,
    percent_label,
    verdict_text,
)
from nin_search.analysis._regime import RegimeEffect, regime_text, size_label
from nin_search.analysis._settle import ablation_settle_text, seeds_to_settle
from nin_search.analysis._stats import (
    AdjustedDifference,
    NormalisedDifference,
    check_confidence,
    half_width_for_seeds,
    mean_difference_interval,
    normalised_difference,
    planning_sd,
    seeds_for_half_width,
    size_adjusted_difference,
    t_interval,
)

__all__ = [
    "CONFIDENCE",
    "MIN_TRIALS_PER_KIND",
    "AdjustedDifference",
    "Answer",
    "DesignSpaceEffect",
    "EdfCurve",
    "NormalisedDifference",
    "PairedEffect",
    "RegimeEffect",
    "StageAblation",
    "StageAnswer",
    "StageConsensus",
    "StudyEffect",
    "ablation_settle_text",
    "answer_lines",
    "check_confidence",
    "consensus_lines",
    "direction",
    "effect_text",
    "find_ablation_study",
    "get_ablation_info",
    "get_answer",
    "get_consensus_info",
    "get_design_space_info",
    "half_width_for_seeds",
    "interval_range",
    "mean_difference_interval",
    "normalised_difference",
    "percent_label",
    "planning_sd",
    "regime_text",
    "searched_study_names",
    "seeds_for_half_width",
    "seeds_to_settle",
    "size_adjusted_difference",
    "size_label",
    "t_interval",
    "verdict_text",
]
