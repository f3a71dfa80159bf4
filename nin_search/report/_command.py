"""``nin-search report`` as one library call: pick the studies, answer, write the page whole."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nin_search.analysis import answer_lines, consensus_lines, find_ablation_study, get_answer
from nin_search.artifacts import study_artifact_dir
from nin_search.outputs import check_outputs, write_atomic
from nin_search.report._analysis_html import ONE_STUDY_NOTE, write_consensus_report
from nin_search.report._html import write_report
from nin_search.report._trials import NO_COMPLETED_TRIALS
from nin_search.report._verdicts import verdict_lines
from nin_search.storage_messages import study_options
from nin_search.study import select_studies


def report_studies(
    storage_url: str,
    output: Path,
    *,
    names: Sequence[str] | None = None,
    every: bool = False,
) -> list[str]:
    """Writes the HTML report of the chosen studies to ``output`` (one study: its report;
    several: the consensus of their ablations) and returns what to print: each study's answer,
    then the naive per-stage comparison (one study) or the consensus, then where it wrote.

    Args:
        storage_url: The storage.
        output: The HTML file, written under a temporary name and then renamed.
        names: The studies (each once); see :func:`nin_search.study.select_studies`.
        every: Every searched study of the storage.

    Raises:
        UserError: For studies that cannot be chosen, or an output that is unusable (the
            database, the artifact store, a missing folder). Nothing is written.
    """
    studies = select_studies(storage_url, names, every=every)
    check_outputs(
        [("--output", output)],
        storage_url=storage_url,
        artifact_dir=study_artifact_dir(studies[0], storage_url, None),
    )
    answers = [
        get_answer(
            study,
            find_ablation_study(study),
            where=study_options(storage_url, study.study_name),
        )
        for study in studies
    ]
    lines = [line for answer in answers for line in answer_lines(answer)]
    if len(studies) == 1:  # --all on a storage with one study: that study's report
        (study,), (answer,) = studies, answers
        note = ONE_STUDY_NOTE if every else None
        lines += [] if note is None else [note]
        verdicts = write_atomic(
            output, lambda path: write_report(study, path, answer=answer, note=note)
        )
        lines.append(
            f"Naive per-stage comparison for study {study.study_name!r} (every completed "
            "trial; confounded by the sampler and by parameter count):"
        )
        lines += [f"  {line}" for line in verdict_lines(verdicts) or [NO_COMPLETED_TRIALS]]
    else:
        consensus = write_atomic(
            output, lambda path: write_consensus_report(studies, path, answers=answers)
        )
        lines += consensus_lines(consensus)
    return [*lines, f"wrote {output} (opens offline)"]
