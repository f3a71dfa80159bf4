"""The study report: study -> figure data (plain structures) -> plotly figures -> HTML.

Every figure follows Optuna's visualization pattern: a ``get_..._info`` function turns the study
into NamedTuples and lists (tested by value), and a ``plot_...`` function draws them. The
question the report answers: for each stage, does an MLP conv (NIN block) beat a plain conv?

Stage types are read from the ``arch`` user attr (``ArchSpec.to_dict()``) when a trial has one,
so fixed (non-searched) spaces work too; otherwise from the ``s{i}_...`` params. Accuracies are
completed trials' values; trials with a non-finite value are left out. Baseline trials (user attr
``baseline``) count like any other trial and are highlighted in the cost figures.

The page opens with the answer of :mod:`nin_search.analysis` (paired ablations from the
companion ``<name>:ablation`` study, the complexity-normalised design-space verdict on random
trials, the effect by size) and its figures; the naive per-stage verdict of all completed
trials (confounded by the sampler and by parameter count) follows for contrast.
:func:`write_consensus_report` pools several studies' ablations.

The modules, in data-flow order: ``_trials`` (reading trials), ``_verdicts`` (naive per-stage
verdicts), ``_data`` (the other figure data), ``_plot`` and ``_analysis_plot`` (drawing),
``_page``, ``_analysis_html`` and ``_html`` (the pages), ``_command`` (``nin-search report``:
choose the studies, write the page, return the lines to print). Nothing here prints.
"""

from nin_search.report._analysis_html import ONE_STUDY_NOTE, write_consensus_report
from nin_search.report._analysis_plot import (
    plot_ablation_forest,
    plot_consensus_forest,
    plot_design_space_edf,
    plot_regime,
)
from nin_search.report._command import report_studies
from nin_search.report._data import (
    AccuracyGroup,
    BestArchitecture,
    CostInfo,
    CostPoint,
    FrontTrial,
    MlpDepthInfo,
    MlpWidthInfo,
    ObjectivesInfo,
    get_best_architecture_table,
    get_cost_info,
    get_mlp_depth_info,
    get_mlp_width_info,
    get_objectives_info,
)
from nin_search.report._html import write_report
from nin_search.report._plot import (
    plot_cost,
    plot_mlp_depth,
    plot_mlp_width,
    plot_param_importances,
    plot_stage_verdicts,
)
from nin_search.report._trials import NO_COMPLETED_TRIALS as NO_COMPLETED_TRIALS
from nin_search.report._trials import BestStageRow
from nin_search.report._verdicts import (
    EqualEpochComparison,
    StageVerdict,
    get_stage_verdicts,
    verdict_lines,
)

__all__ = [
    "ONE_STUDY_NOTE",
    "AccuracyGroup",
    "BestArchitecture",
    "BestStageRow",
    "CostInfo",
    "CostPoint",
    "EqualEpochComparison",
    "FrontTrial",
    "MlpDepthInfo",
    "MlpWidthInfo",
    "ObjectivesInfo",
    "StageVerdict",
    "get_best_architecture_table",
    "get_cost_info",
    "get_mlp_depth_info",
    "get_mlp_width_info",
    "get_objectives_info",
    "get_stage_verdicts",
    "plot_ablation_forest",
    "plot_consensus_forest",
    "plot_cost",
    "plot_design_space_edf",
    "plot_mlp_depth",
    "plot_mlp_width",
    "plot_param_importances",
    "plot_regime",
    "plot_stage_verdicts",
    "report_studies",
    "verdict_lines",
    "write_consensus_report",
    "write_report",
]
