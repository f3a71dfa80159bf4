"""The study note and the dashboard server, on a study written by the real CLI.

The dashboard is served over real HTTP on a free loopback port and read back through
optuna-dashboard's JSON API; one test loads its pages in headless Chromium.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from optuna.trial import TrialState
from PIL import Image
from safetensors.torch import load as load_safetensors

from nin_search.analysis import answer_lines, find_ablation_study, get_answer
from nin_search.dashboard import make_app, make_http_server
from nin_search.errors import UserError
from nin_search.report import get_stage_verdicts, verdict_lines
from nin_search.study_note import refresh_study_note, study_note

from .conftest import run_cli, write_study

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",  # ms of page time: the app fetches the study, then renders
)
HTTP_TIMEOUT = 30  # seconds for one API request
BROWSER_TIMEOUT = 120  # seconds for one Chromium run


def storage_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'nin_search.db'}"


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, optuna.Study]:
    """A 3-trial digits study written by the real CLI, with the study note refreshed."""
    folder = tmp_path_factory.mktemp("dashboard")
    result = run_cli("optimize", str(write_study(folder)), cwd=folder)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="tiny", storage=storage_url(folder))
    refresh_study_note(study)
    return folder, study


@pytest.fixture(scope="module")
def server(searched) -> Iterator[str]:
    """The dashboard of the searched study on a free loopback port; yields its base URL."""
    folder, _ = searched
    http_server = make_http_server(
        storage_url(folder), host="127.0.0.1", port=0, artifact_dir=folder / "nin_search-artifacts"
    )
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http_server.server_port}"
    http_server.shutdown()
    http_server.server_close()
    thread.join(timeout=HTTP_TIMEOUT)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
        return response.read()


def study_id_of(server: str, study_name: str) -> int:
    summaries = json.loads(fetch(f"{server}/api/studies"))["study_summaries"]
    return next(summary["study_id"] for summary in summaries if summary["study_name"] == study_name)


def expected_note(study: optuna.Study) -> str:
    answer = answer_lines(get_answer(study, find_ablation_study(study)))
    return study_note(study, verdict_lines(get_stage_verdicts(study)), answer_lines=answer)


def percent(value: float) -> str:
    return f"{value * 100:.2f}%"


# ----------------------------------------------------------------------------------------------
# The study note
# ----------------------------------------------------------------------------------------------


def test_the_study_note_summarises_space_trials_best_trial_baselines_and_verdicts(searched):
    _, study = searched
    lines = verdict_lines(get_stage_verdicts(study))
    note_lines = study_note(study, lines).splitlines()
    assert note_lines[0] == "# nin-search study: tiny"
    for line in (
        "- dataset: `digits`",
        "- epochs per trial: `2`",
        "- number of stages: `1, 2`",
        "- stage types: `plain, mlp`",
        "- kernel sizes: `3, 5`",
        "- widths (k x k conv): `8, 16`",
        "- MLP depth (1x1 convs per MLP stage): `1..2`",
        "- MLP widths (1x1 convs): `8, 16`",
        "- sampler: `tpe`",
        "- pruner: `percentile`",
        "3 complete.",
    ):
        assert line in note_lines
    best = study.best_trial
    summary = best.user_attrs["arch_summary"]
    assert f"trial #{best.number}: **{percent(best.value)}** `{summary}`" in note_lines
    trials = study.get_trials()
    for kind, title in (("nin", "NIN baseline"), ("plain", "plain baseline")):
        baseline = next(trial for trial in trials if trial.user_attrs.get("baseline") == kind)
        assert baseline.state == TrialState.COMPLETE
        summary = baseline.user_attrs["arch_summary"]
        line = f"- {title}: trial #{baseline.number}: **{percent(baseline.value)}** `{summary}`"
        assert line in note_lines
    assert len(lines) == 2  # one per stage; the tiny study has up to 2
    for line in lines:
        assert f"- {line}" in note_lines


def unescape_markdown(text: str) -> str:
    """What CommonMark shows for ``text``: backslash-escaped punctuation and entities as is."""
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text))


def test_the_study_note_puts_the_answer_before_the_naive_comparison():
    from .test_analysis import confounded_study

    study = confounded_study(mlp_effect=0.02)
    lines = answer_lines(get_answer(study))
    naive = verdict_lines(get_stage_verdicts(study))
    note = study_note(study, naive, answer_lines=lines).splitlines()
    start = note.index("## Answer")
    assert unescape_markdown(note[start + 2]) == lines[0]
    assert unescape_markdown(note[start + 4]) == "- stage 0:"
    assert unescape_markdown(note[start + 5]) == "  - " + lines[2].strip()
    naive_start = note.index("## Naive comparison (every completed trial, per stage)")
    assert naive_start > start
    answer = "\n".join(note[start:naive_start])
    assert "<" not in answer and re.search(r"(?<!\\)`", answer) is None  # plain text
    assert f"- {naive[0]}" in note[naive_start:]
    assert "## Answer" not in study_note(study, naive)


def test_markdown_and_html_in_the_study_name_are_shown_as_plain_text():
    name = "<script>alert(1)</script> **bold** [link](javascript:alert(1))\n# heading | `x` & co"
    study = optuna.create_study(study_name=name)
    note = study_note(study, [])
    assert "<" not in note and ">" not in note
    assert "**bold**" not in note and "](" not in note and "`x`" not in note
    headings = [line for line in note.splitlines() if line.startswith("# ")]
    assert len(headings) == 1
    title = headings[0].removeprefix("# nin-search study: ")
    # CommonMark reads a backslash before punctuation, and an entity, as the bare character.
    assert html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", title)) == " ".join(name.split())
    assert "No search space recorded" in note and "No completed trial yet." in note


def test_the_note_of_a_study_with_several_objectives_lists_its_pareto_front():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for accuracy, params in [(0.97, 28000), (0.99, 8000), (0.90, 900), (0.95, 40000)]:
        attrs = {"arch": {}, "arch_summary": "net", "params": params, "macs": 10 * params}
        study.add_trial(optuna.trial.create_trial(values=[accuracy, params], user_attrs=attrs))
    note = study_note(study, []).splitlines()
    assert "## Best trial" not in note
    start = note.index("## Pareto front (accuracy vs objective 2), most accurate first")
    front = [line for line in note[start + 1 :] if line.startswith("- trial #")]
    assert front == [
        "- trial #1: **99.00%** `net` (8,000 params, 80,000 MACs)",
        "- trial #2: **90.00%** `net` (900 params, 9,000 MACs)",
    ]


def test_the_note_shows_a_trial_over_a_cost_limit_as_over_the_limit_not_as_0_percent():
    study = optuna.create_study(direction="maximize")
    violation = "12,000 params > cost.max_params 10,000"
    attrs = {
        "arch": {},
        "arch_summary": "net",
        "baseline": "nin",
        "constraint_violation": violation,
    }
    study.add_trial(optuna.trial.create_trial(value=0.0, user_attrs=attrs))
    note = study_note(study, [])
    lines = [html.unescape(unescape_markdown(line)) for line in note.splitlines()]
    assert f"- NIN baseline: trial #0: over a limit: {violation} `net`" in lines, note
    assert "0.00%" not in note


# ----------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------


def test_the_dashboard_api_serves_the_trials_their_curves_the_note_and_the_weights(
    searched, server
):
    folder, study = searched
    study_id = study_id_of(server, "tiny")
    detail = json.loads(fetch(f"{server}/api/studies/{study_id}"))
    assert detail["note"]["body"] == expected_note(study)
    served = {trial["number"]: trial for trial in detail["trials"]}
    trials = study.get_trials()
    assert sorted(served) == [trial.number for trial in trials]
    for trial in trials:
        attrs = {attr["key"]: attr["value"] for attr in served[trial.number]["user_attrs"]}
        assert attrs["arch_summary"] == trial.user_attrs["arch_summary"]
        assert attrs["params"] == str(trial.user_attrs["params"])
        assert attrs["macs"] == str(trial.user_attrs["macs"])
        curve = {
            point["step"]: point["value"] for point in served[trial.number]["intermediate_values"]
        }
        assert curve == trial.intermediate_values and len(curve) == 2

    best = served[study.best_trial.number]
    artifact_id = study.best_trial.user_attrs["weights_artifact"]
    assert [artifact["artifact_id"] for artifact in best["artifacts"]] == [artifact_id]
    weights = fetch(f"{server}/artifacts/{study_id}/{best['trial_id']}/{artifact_id}")
    assert weights == (folder / "nin_search-artifacts" / artifact_id).read_bytes()
    assert load_safetensors(weights)


def call_wsgi(app, path: str) -> tuple[str, bytes]:
    environ: dict = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    statuses = []
    body = b"".join(app(environ, lambda status, headers, *_: statuses.append(status)))
    return statuses[0], body


def test_the_app_finds_the_weights_beside_the_database_by_default(searched):
    folder, _ = searched
    status, body = call_wsgi(make_app(storage_url(folder)), "/api/meta")
    assert status.startswith("200") and json.loads(body)["artifact_is_available"] is True


def test_a_missing_database_or_artifact_folder_is_a_user_error(searched, tmp_path):
    folder, _ = searched
    with pytest.raises(UserError, match="run `nin-search optimize` first"):
        make_app(storage_url(tmp_path))
    with pytest.raises(UserError, match="--artifact-dir .*missing. not found; pass the artifact"):
        make_app(storage_url(folder), artifact_dir=tmp_path / "missing")


def test_a_port_in_use_is_a_user_error(searched, server):
    folder, _ = searched
    port = int(server.rsplit(":", 1)[1])
    with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is in use"):
        make_http_server(storage_url(folder), host="127.0.0.1", port=port)


# ----------------------------------------------------------------------------------------------
# A real browser
# ----------------------------------------------------------------------------------------------


def chromium(url: str, *options: str, profile: Path) -> str:
    """Runs headless Chromium on ``url``; returns its stdout (the DOM with ``--dump-dom``)."""
    if not CHROMIUM.exists():
        pytest.skip(
            "headless Chromium (Debian package chromium) is not installed; .ci/run installs it"
        )
    result = subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *options, url],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def page_text(dom: str) -> str:
    """The DOM's text, tags removed, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def test_a_browser_shows_the_trials_user_attrs_and_the_study_note(searched, server, tmp_path):
    _, study = searched
    study_id = study_id_of(server, "tiny")
    pages = f"{server}/dashboard/studies/{study_id}"
    profile = tmp_path / "chromium-profile"

    trial = study.get_trials()[-1]
    dom = chromium(f"{pages}/trials?numbers={trial.number}", "--dump-dom", profile=profile)
    assert f"arch_summary {trial.user_attrs['arch_summary']}" in page_text(dom)

    dom = chromium(f"{pages}/note", "--dump-dom", profile=profile)
    assert re.search(r"<h1[^>]*>\s*nin-search study: tiny\s*</h1>", dom)
    assert f"<strong>{percent(study.best_trial.value)}</strong>" in dom
    text = page_text(dom)
    for line in verdict_lines(get_stage_verdicts(study)):
        assert line in text
    assert "Answer: does MLP conv beat plain conv in study 'tiny'?" in text

    screenshot = tmp_path / "dashboard.png"
    chromium(
        f"{pages}/note", f"--screenshot={screenshot}", "--window-size=1400,1000", profile=profile
    )
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.size == (1400, 1000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 50  # text and widgets, not a blank or single-colour page
