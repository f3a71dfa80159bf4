"""Several workers on one study under load, and workers that die or are stopped mid-trial.

Every run is the real CLI (``python -m nin_search optimize``) in its own process; the study is
read back with plain Optuna, and during the load tests also through the dashboard's HTTP API.
The pruner is off, so the number of finished trials is exact. With ``NIN_SEARCH_TEST_REPORT``
set, each test appends its numbers (trials finished, failed, retried, duplicated) to that file.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from nin_search.dashboard import make_http_server
from nin_search.errors import UserError

from .conftest import postgres_url, write_study

pytestmark = pytest.mark.slow

# Tiny trials (well under a second each on a CPU) for the load tests.
LOAD_STUDY = """
[study]
name = "load"
seed = 1
n_trials = 40

[space]
num_stages = [1, 2]
widths = [4, 8]
mlp_widths = [4, 8]

[train]
epochs = 1
batch_size = [64]
device = "cpu"

[optuna]
pruner = "none"
"""

# Trials of a few seconds (6 epochs), so that a signal can reach one mid-trial. No baselines:
# every trial is a sampled one, and the first starts at once.
FAULT_EPOCHS = 6
FAULT_STUDY = """
[study]
name = "fault"
seed = 1
n_trials = 2
baselines = false

[space]
num_stages = [1, 2]
widths = [16, 32]
mlp_widths = [16, 32]

[train]
epochs = 6
batch_size = [64]
device = "cpu"

[optuna]
pruner = "none"
"""

# What a worker prints when it ran a trial that another worker ran and finished first.
CLAIMED_TWICE = ("Cannot tell a ", "has already finished and can not be updated")
RUN_TIMEOUT = 300  # seconds one `optimize` process may take before the test fails
SIGNAL_TIMEOUT = 60  # seconds a signalled process may take to exit
POLL_INTERVAL = 0.3  # seconds between two reads of the dashboard API
HTTP_TIMEOUT = 30  # seconds for one API request
# optuna-dashboard serves a study's trials from a cache it refreshes at most every 2 s while the
# study has under 100 trials (optuna_dashboard/_storage.py, get_trials): a read within 2 s of the
# last one may show a trial as running that has since finished. The read after the run waits this
# long, so that it shows the study as the database holds it.
DASHBOARD_TRIALS_TTL = 2.0


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def report_numbers(test: str, **numbers: Any) -> None:
    """Appends ``test: key=value ...`` to the file named by NIN_SEARCH_TEST_REPORT, if set."""
    path = os.environ.get("NIN_SEARCH_TEST_REPORT")
    if not path:
        return
    values = " ".join(f"{key}={value}" for key, value in numbers.items())
    with open(path, "a", encoding="utf-8") as report:
        report.write(f"{test}: {values}\n")


def _default_sigint() -> None:
    # A child of a shell that ignores SIGINT (a background job) inherits the ignore; Python
    # then never raises KeyboardInterrupt. Give the CLI the default disposition back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a script's background job inherits


def start_optimize(
    *args: str, cwd: Path, log: str, own_group: bool = False, ignore_sigint: bool = False
) -> subprocess.Popen:
    """Starts ``python -m nin_search optimize ARGS``; its output goes to ``cwd/log.{out,err}``;
    ``own_group``: in a process group of its own, as a shell job or a systemd unit;
    ``ignore_sigint``: as a background job of a script (``nin-search optimize ... &``)."""
    env = {**os.environ, "COLUMNS": "120", "PYTHONWARNINGS": "error::FutureWarning"}
    with open(cwd / f"{log}.out", "w") as out, open(cwd / f"{log}.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "nin_search", "optimize", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            preexec_fn=_ignore_sigint if ignore_sigint else _default_sigint,
            process_group=0 if own_group else None,
        )


def finish(process: subprocess.Popen, *, timeout: float, cwd: Path, log: str) -> tuple[int, str]:
    """Waits for ``process``; returns its exit code and its stderr."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{log} ran past {timeout} s:\n{(cwd / f'{log}.err').read_text()[-3000:]}")
    return code, (cwd / f"{log}.err").read_text()


def run_optimize(*args: str, cwd: Path, log: str) -> tuple[int, str]:
    return finish(start_optimize(*args, cwd=cwd, log=log), timeout=RUN_TIMEOUT, cwd=cwd, log=log)


def params_key(trial: FrozenTrial) -> str:
    return json.dumps(trial.params, sort_keys=True)


@dataclass
class Numbers:
    """What a finished run left in the study."""

    finished: int
    failed: int
    running: int
    waiting: int
    retried: int  # trials that repeat a failed one (user attr retry_of)
    # Repeated trial numbers + extra runs of the same enqueued parameters + runs of a trial
    # that another worker had already finished (Optuna then refuses the second result).
    duplicated: int
    same_sampled_params: int  # sampled (not enqueued) trials whose params an earlier one had

    def line(self) -> dict[str, int]:
        return {
            "finished": self.finished,
            "failed": self.failed,
            "retried": self.retried,
            "duplicated": self.duplicated,
            "same_sampled_params": self.same_sampled_params,
        }


def count(trials: list[FrozenTrial], stderr: str = "") -> Numbers:
    states = collections.Counter(trial.state for trial in trials)
    numbers = collections.Counter(trial.number for trial in trials)
    # Enqueued trials (baselines, retries) carry their parameters as `fixed_params`. A retry
    # repeats a failed trial's parameters on purpose: only runs that did not fail count.
    enqueued = collections.Counter(
        params_key(trial)
        for trial in trials
        if "fixed_params" in trial.system_attrs and trial.state != TrialState.FAIL
    )
    sampled = collections.Counter(
        params_key(trial) for trial in trials if "fixed_params" not in trial.system_attrs
    )
    return Numbers(
        finished=states[TrialState.COMPLETE] + states[TrialState.PRUNED],
        failed=states[TrialState.FAIL],
        running=states[TrialState.RUNNING],
        waiting=states[TrialState.WAITING],
        retried=sum("retry_of" in trial.user_attrs for trial in trials),
        duplicated=sum(n - 1 for n in numbers.values())
        + sum(n - 1 for n in enqueued.values())
        + sum(stderr.count(text) for text in CLAIMED_TWICE),
        same_sampled_params=sum(n - 1 for n in sampled.values()),
    )


def assert_consistent(trials: list[FrozenTrial], *, target: int) -> Numbers:
    """The target is reached, nothing is left running or waiting, nothing ran twice."""
    numbers = count(trials)
    assert numbers.finished == target, numbers
    assert numbers.running == 0 and numbers.waiting == 0, numbers
    assert numbers.duplicated == 0, numbers
    assert sorted(trial.number for trial in trials) == list(range(len(trials)))
    return numbers


def wait_for(predicate, *, timeout: float, what: str, process: subprocess.Popen | None = None):
    """Polls ``predicate`` until it returns something truthy; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process exited ({process.returncode}) before {what}")
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# ----------------------------------------------------------------------------------------------
# A reader on the dashboard's HTTP API while the workers write
# ----------------------------------------------------------------------------------------------


@dataclass
class DashboardReader:
    """Serves the dashboard of ``storage_url`` and reads the study through its API.

    Before the study exists (no database file yet, or the study not in it), a poll is skipped;
    from the first poll that sees the study on, every poll must succeed.
    """

    storage_url: str
    study_name: str
    polls: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    trial_counts: list[int] = field(default_factory=list)
    last_states: collections.Counter = field(default_factory=collections.Counter)
    server: Any = None
    thread: threading.Thread | None = None
    study_id: int | None = None

    def _fetch(self, path: str) -> Any:
        base = f"http://127.0.0.1:{self.server.server_port}"
        with urllib.request.urlopen(f"{base}{path}", timeout=HTTP_TIMEOUT) as response:
            return json.loads(response.read())

    def _start_server(self) -> bool:
        try:
            self.server = make_http_server(self.storage_url, host="127.0.0.1", port=0)
        except UserError as error:
            # optimize has not created the file, or SQLite has created it but not yet written
            # its header (an empty file), or PostgreSQL's tables do not exist yet
            starting = ("no database at", "is an empty file", "holds no Optuna study")
            if any(message in str(error) for message in starting):
                return False
            raise
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return True

    def poll(self) -> None:
        try:
            if self.server is None and not self._start_server():
                self.skipped += 1
                return
            if self.study_id is None:
                summaries = self._fetch("/api/studies")["study_summaries"]
                ids = [s["study_id"] for s in summaries if s["study_name"] == self.study_name]
                if not ids:  # the study is not created yet
                    self.skipped += 1
                    return
                self.study_id = ids[0]
            else:
                summaries = self._fetch("/api/studies")["study_summaries"]
                names = [summary["study_name"] for summary in summaries]
                assert self.study_name in names, f"study gone from /api/studies: {names}"
            detail = self._fetch(f"/api/studies/{self.study_id}")
            trials = detail["trials"]
            self.trial_counts.append(len(trials))
            self.last_states = collections.Counter(trial["state"] for trial in trials)
            self.polls += 1
        except (
            OSError,  # urllib.error.URLError and HTTPError are OSErrors
            ValueError,  # not JSON
            KeyError,
            AssertionError,
            UserError,
            sqlalchemy.exc.SQLAlchemyError,
        ) as error:
            self.errors.append(f"{error.__class__.__name__}: {error}")

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=HTTP_TIMEOUT)


def run_with_reader(
    study_file: Path, storage_url: str, study_name: str, *, workers: int, n_trials: int, cwd: Path
) -> tuple[int, str, DashboardReader, float]:
    """``optimize --workers N`` with the dashboard API read every POLL_INTERVAL meanwhile."""
    reader = DashboardReader(storage_url, study_name)
    started = time.monotonic()
    process = start_optimize(
        str(study_file),
        "--workers",
        str(workers),
        "--n-trials",
        str(n_trials),
        "--storage",
        storage_url,
        "--study-name",
        study_name,
        cwd=cwd,
        log="load",
    )
    try:
        while process.poll() is None:
            if time.monotonic() - started > RUN_TIMEOUT:
                break
            reader.poll()
            time.sleep(POLL_INTERVAL)
        code, stderr = finish(process, timeout=RUN_TIMEOUT, cwd=cwd, log="load")
        wall = time.monotonic() - started
        time.sleep(DASHBOARD_TRIALS_TTL + 0.5)  # past the dashboard's cache of the last poll
        reader.poll()  # after the run: the reader sees the final study
    finally:
        if process.poll() is None:
            process.kill()
        reader.close()
    return code, stderr, reader, wall


@dataclass
class LoadRun:
    name: str
    code: int
    stderr: str
    reader: DashboardReader
    wall: float
    trials: list[FrozenTrial]
    numbers: Numbers


def load_run(
    name: str, folder: Path, storage_url: str, study_name: str, *, workers: int, n_trials: int
) -> LoadRun:
    study_file = write_study(folder, LOAD_STUDY)
    code, stderr, reader, wall = run_with_reader(
        study_file, storage_url, study_name, workers=workers, n_trials=n_trials, cwd=folder
    )
    trials = optuna.load_study(study_name=study_name, storage=storage_url).get_trials()
    numbers = count(trials, stderr)
    print(f"{name}: {workers} workers, {n_trials} trials in {wall:.1f} s, {reader.polls} polls")
    report_numbers(name, **numbers.line(), polls=reader.polls, wall_s=f"{wall:.1f}")
    return LoadRun(name, code, stderr, reader, wall, trials, numbers)


def check_load_run(run: LoadRun, *, workers: int, target: int) -> None:
    """Exit 0, exactly ``target`` finished trials, nothing failed or run twice, every worker
    took part, and every read of the dashboard API succeeded."""
    trials, numbers, reader = run.trials, run.numbers, run.reader
    assert run.code == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "Warning" not in run.stderr, run.stderr[-3000:]  # the workers' own too
    assert "worker exit codes" not in run.stderr, run.stderr[-3000:]
    assert numbers.failed == 0, [t.user_attrs.get("fail_reason") for t in trials]
    assert_consistent(trials, target=target)
    assert len(trials) == target
    # Each baseline ran exactly once (no two workers popped the same enqueued trial).
    baselines = collections.Counter(trial.user_attrs.get("baseline") for trial in trials)
    assert baselines["nin"] == 1 and baselines["plain"] == 1, baselines
    # The trials really were shared between the worker processes.
    pids = {trial.user_attrs["worker"]["pid"] for trial in trials}
    assert len(pids) == workers, pids
    # The reader: every poll succeeded, the study only grew, and the last poll saw the end.
    assert reader.errors == [], reader.errors[:5]
    assert reader.polls >= 3, reader
    assert reader.trial_counts == sorted(reader.trial_counts)
    assert reader.trial_counts[-1] == target
    assert reader.last_states == {"Complete": target}, reader.last_states


# ----------------------------------------------------------------------------------------------
# Load: several workers on one study, a dashboard reading meanwhile
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_load_run(tmp_path_factory) -> LoadRun:
    """40 trials by 4 local workers on one SQLite file, the dashboard API read meanwhile."""
    folder = tmp_path_factory.mktemp("load-sqlite")
    storage_url = f"sqlite:///{folder / 'load.db'}"
    return load_run("sqlite_4_workers", folder, storage_url, "load", workers=4, n_trials=40)


def test_four_workers_on_sqlite_finish_exactly_the_target_while_a_dashboard_reads(
    sqlite_load_run,
):
    check_load_run(sqlite_load_run, workers=4, target=40)


def test_parallel_workers_sample_different_parameters(sqlite_load_run):
    assert sqlite_load_run.numbers.same_sampled_params == 0


def test_three_workers_on_postgresql_finish_exactly_the_target_while_a_dashboard_reads(
    tmp_path,
):
    storage_url = postgres_url()
    study_name = f"load-{uuid.uuid4().hex[:12]}"
    try:
        run = load_run(
            "postgresql_3_workers", tmp_path, storage_url, study_name, workers=3, n_trials=30
        )
        check_load_run(run, workers=3, target=30)
    finally:
        with contextlib.suppress(KeyError):  # never created
            optuna.delete_study(study_name=study_name, storage=storage_url)


def _engine(study: optuna.Study) -> sqlalchemy.engine.Engine:
    storage = study._storage
    return getattr(storage, "_backend", storage).engine  # under Optuna's cache


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        "postgresql",
    ],
)
def test_two_workers_never_claim_the_same_enqueued_trial(tmp_path, backend):
    """The race of the load test, made deterministic: worker B asks for a trial while worker A
    has read the first waiting trial (a baseline) but not yet marked it RUNNING."""
    from nin_search.config import StudyConfig
    from nin_search.study import open_study

    storage_url = f"sqlite:///{tmp_path / 'race.db'}" if backend == "sqlite" else postgres_url()
    study_name = f"race-{uuid.uuid4().hex[:12]}"
    config = StudyConfig.model_validate({"study": {"name": study_name}, "train": {"device": "cpu"}})
    worker_a = open_study(config, storage_url=storage_url, study_name=study_name)
    worker_b = open_study(config, storage_url=storage_url, study_name=study_name)
    claimed_by_b: list[int] = []
    threads: list[threading.Thread] = []

    def b_asks_in_between(connection, cursor, statement, parameters, context, executemany):
        # A has just read the trial it is about to claim; B asks now, from another thread.
        if threads or "WHERE trials.trial_id = " not in statement:
            return
        thread = threading.Thread(target=lambda: claimed_by_b.append(worker_b.ask().number))
        threads.append(thread)
        thread.start()
        thread.join(timeout=1.0)  # a storage that locks the row makes B wait for A

    sqlalchemy.event.listen(_engine(worker_a), "after_cursor_execute", b_asks_in_between)
    try:
        claimed_by_a = worker_a.ask().number
        threads[0].join(timeout=60)
        assert claimed_by_b, "worker B got no trial"
        assert claimed_by_a != claimed_by_b[0], f"both workers claimed trial {claimed_by_a}"
    finally:
        sqlalchemy.event.remove(_engine(worker_a), "after_cursor_execute", b_asks_in_between)
        if backend == "postgresql":
            optuna.delete_study(study_name=study_name, storage=storage_url)


def test_a_resumed_study_samples_new_parameters(tmp_path, monkeypatch, capsys):
    from .test_cli import in_process

    text = LOAD_STUDY.replace("n_trials = 40", "n_trials = 1\nbaselines = false")
    study_file = write_study(tmp_path, text)
    storage_url = f"sqlite:///{tmp_path / 'resume.db'}"
    for n_trials in ("1", "2"):  # the first run, then a resume up to 2 trials
        code, _, err = in_process(
            monkeypatch,
            capsys,
            "optimize",
            str(study_file),
            "--storage",
            storage_url,
            "--n-trials",
            n_trials,
        )
        assert code == 0, err
    first, second = optuna.load_study(study_name="load", storage=storage_url).get_trials()
    assert first.params != second.params


# ----------------------------------------------------------------------------------------------
# Faults: a worker killed, terminated or interrupted mid-trial, then the same command again
# ----------------------------------------------------------------------------------------------


def _running_trial_with_a_report(storage_url: str, study_name: str) -> FrozenTrial | None:
    """The study's RUNNING non-baseline trial that reported an epoch, once there is one."""
    database = Path(storage_url.removeprefix("sqlite:///"))
    if not database.exists():
        return None
    try:
        study = optuna.load_study(
            study_name=study_name,
            storage=optuna.storages.RDBStorage(
                storage_url, engine_kwargs={"connect_args": {"timeout": 30}}
            ),
        )
    except (KeyError, sqlalchemy.exc.SQLAlchemyError):
        return None  # the database or the study is being created
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reported = trial.intermediate_values and "worker" in trial.user_attrs
        if reported and not trial.user_attrs.get("baseline"):
            return trial
    return None


def start_and_wait_mid_trial(
    tmp_path: Path,
    *,
    workers: int = 1,
    n_trials: int = 2,
    own_group: bool = False,
    ignore_sigint: bool = False,
) -> tuple[subprocess.Popen, FrozenTrial, list[str]]:
    """Starts ``optimize`` on the fault study; returns once a trial has reported an epoch."""
    study_file = write_study(tmp_path, FAULT_STUDY)
    storage_url = f"sqlite:///{tmp_path / 'fault.db'}"
    args = [str(study_file), "--storage", storage_url, "--workers", str(workers)]
    args += ["--n-trials", str(n_trials)]
    process = start_optimize(
        *args, cwd=tmp_path, log="first", own_group=own_group, ignore_sigint=ignore_sigint
    )
    try:
        trial = wait_for(
            lambda: _running_trial_with_a_report(storage_url, "fault"),
            timeout=RUN_TIMEOUT,
            what="a running trial with an intermediate value",
            process=process,
        )
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, trial, args


def fault_trials(tmp_path: Path) -> list[FrozenTrial]:
    return optuna.load_study(
        study_name="fault", storage=f"sqlite:///{tmp_path / 'fault.db'}"
    ).get_trials()


def check_resumed(tmp_path: Path, args: list[str], stopped: FrozenTrial) -> Numbers:
    """Runs the same command again: it re-queues ``stopped`` and reaches the target."""
    code, stderr = run_optimize(*args, cwd=tmp_path, log="second")
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    trials = fault_trials(tmp_path)
    numbers = assert_consistent(trials, target=2)
    retries = [trial for trial in trials if trial.user_attrs.get("retry_of") == stopped.number]
    assert len(retries) == 1, [(t.number, t.user_attrs) for t in trials]
    assert retries[0].params == stopped.params
    assert retries[0].state == TrialState.COMPLETE
    assert numbers.failed == 1 and numbers.retried == 1, numbers
    return numbers


def test_a_worker_killed_mid_trial_is_failed_and_retried_by_the_next_run(tmp_path):
    started = time.monotonic()
    process, trial, args = start_and_wait_mid_trial(tmp_path)
    pid = trial.user_attrs["worker"]["pid"]
    assert pid == process.pid  # with --workers 1 the CLI process trains itself
    os.kill(pid, signal.SIGKILL)
    assert process.wait(timeout=SIGNAL_TIMEOUT) == -signal.SIGKILL
    # Killed: nobody could record anything, the trial is still RUNNING.
    left = fault_trials(tmp_path)[trial.number]
    assert left.state == TrialState.RUNNING

    numbers = check_resumed(tmp_path, args, trial)
    killed = fault_trials(tmp_path)[trial.number]
    assert killed.state == TrialState.FAIL
    # The next run cannot know how the worker ended: the reason says so, not "died".
    assert "ended while running it" in killed.user_attrs["fail_reason"], killed.user_attrs
    assert str(pid) in killed.user_attrs["fail_reason"]
    assert "recovered: failed 1 trial(s)" in (tmp_path / "second.err").read_text()
    # The retry resumed from the killed trial's last checkpoint, saved after every epoch
    # before the epoch is reported: every reported epoch was saved, and at most one more
    # (finished and saved, then killed before its report). Its curve has every epoch once.
    retry = next(t for t in fault_trials(tmp_path) if t.user_attrs.get("retry_of") == trial.number)
    resumed = retry.user_attrs.get("resumed_from_epoch", 0)
    reported = len(killed.intermediate_values)
    assert 1 <= reported <= resumed <= reported + 1, (resumed, killed.intermediate_values)
    steps = sorted(retry.intermediate_values)
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == FAULT_EPOCHS
    for epoch in range(1, reported + 1):
        assert retry.intermediate_values[epoch] == killed.intermediate_values[epoch]
    wall = time.monotonic() - started
    report_numbers("sigkill_1_worker", **numbers.line(), wall_s=f"{wall:.1f}")


@pytest.mark.parametrize(
    ("signal_number", "exit_code", "reason"),
    [
        (signal.SIGTERM, 143, "interrupted (Terminated)"),
        (signal.SIGINT, 130, "interrupted (KeyboardInterrupt)"),
    ],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_mid_trial_fails_the_trial_with_a_reason_and_the_next_run_resumes(
    tmp_path, signal_number, exit_code, reason
):
    started = time.monotonic()
    process, trial, args = start_and_wait_mid_trial(tmp_path)
    process.send_signal(signal_number)
    code, stderr = finish(process, timeout=SIGNAL_TIMEOUT, cwd=tmp_path, log="first")
    assert code == exit_code, stderr[-3000:]
    assert "run the same command again to resume" in stderr
    # The database is consistent at once: the trial failed with its reason, none running.
    trials = fault_trials(tmp_path)
    stopped = trials[trial.number]
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs["fail_reason"] == reason
    assert stopped.user_attrs["retry"] is True
    assert count(trials).running == 0

    numbers = check_resumed(tmp_path, args, stopped)
    assert "re-queued 1 interrupted trial(s)" in (tmp_path / "second.err").read_text()
    wall = time.monotonic() - started
    name = signal.Signals(signal_number).name
    report_numbers(f"{name.lower()}_1_worker", **numbers.line(), wall_s=f"{wall:.1f}")


def test_sigterm_to_the_whole_process_group_stops_every_worker_and_loses_no_trial(tmp_path):
    # What systemd, Slurm and `kill -TERM -PGID` do: the command, its workers and the fork
    # server they come from each get SIGTERM, and the workers a second one from the command.
    process, _, args = start_and_wait_mid_trial(tmp_path, workers=2, n_trials=4, own_group=True)
    os.killpg(process.pid, signal.SIGTERM)
    code, stderr = finish(process, timeout=SIGNAL_TIMEOUT, cwd=tmp_path, log="first")
    assert code == 143, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "recorded as failed, and the next run retries them" in stderr, stderr[-3000:]
    trials = fault_trials(tmp_path)
    assert count(trials).running == 0
    stopped = [trial for trial in trials if trial.state == TrialState.FAIL]
    assert stopped
    for trial in stopped:
        assert trial.user_attrs.get("fail_reason") == "interrupted (Terminated)", trial.user_attrs
        assert trial.user_attrs.get("retry") is True

    code, stderr = run_optimize(*args, cwd=tmp_path, log="second")
    assert code == 0, stderr[-3000:]
    trials = fault_trials(tmp_path)
    retried = {trial.user_attrs.get("retry_of") for trial in trials}
    assert {trial.number for trial in stopped} <= retried  # every stopped trial ran again
    assert count(trials).running == 0


def _running_descendants(pid: int) -> set[int]:
    """The processes below ``pid`` that run (not zombies), from /proc: the fork server and the
    workers it forked."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (name) state ppid ...": the name may hold spaces and parentheses
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                children[int(fields[1])].append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _still_running(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
    return alive


def _wait_for_workers_to_stop(pids: set[int], tmp_path: Path) -> None:
    """Waits until none of ``pids`` runs and no trial is RUNNING; kills what is left and fails
    after SIGNAL_TIMEOUT (orphans must not outlive a failed test)."""
    try:
        wait_for(
            lambda: not _still_running(pids) and count(fault_trials(tmp_path)).running == 0,
            timeout=SIGNAL_TIMEOUT,
            what="the workers to stop and record their trials",
        )
    finally:
        for pid in _still_running(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stopped_trials(tmp_path: Path, reason: str) -> list[FrozenTrial]:
    """The failed trials, each with ``reason`` and marked for a retry."""
    stopped = [trial for trial in fault_trials(tmp_path) if trial.state == TrialState.FAIL]
    assert stopped
    for trial in stopped:
        assert trial.user_attrs.get("fail_reason") == reason, trial.user_attrs
        assert trial.user_attrs.get("retry") is True
    return stopped


def test_workers_stop_when_their_command_is_killed_and_the_next_run_retries_their_trials(
    tmp_path,
):
    # SIGKILL or the OOM killer ends the command alone: its workers, forked from the fork
    # server, used to go on training (their trials RUNNING under live processes, which no
    # re-run may fail) until their share of the 1000 trials was done.
    process, _, args = start_and_wait_mid_trial(tmp_path, workers=2, n_trials=1000)
    workers = _running_descendants(process.pid)
    assert len(workers) >= 3, workers  # the fork server and two workers
    process.kill()
    process.wait()
    _wait_for_workers_to_stop(workers, tmp_path)
    stopped = _stopped_trials(tmp_path, "interrupted (Terminated)")

    # A re-run retries the stopped trials (n_trials counts complete and pruned trials).
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    target = sum(trial.state in done for trial in fault_trials(tmp_path)) + len(stopped)
    resumed = [*args[: args.index("--n-trials")], "--n-trials", str(target)]
    code, stderr = run_optimize(*resumed, cwd=tmp_path, log="second")
    assert code == 0, stderr[-3000:]
    trials = fault_trials(tmp_path)
    retried = {trial.user_attrs.get("retry_of") for trial in trials}
    assert {trial.number for trial in stopped} <= retried
    assert count(trials).running == 0 and count(trials).duplicated == 0


def test_sigint_to_the_command_alone_stops_its_workers(tmp_path):
    # `kill -INT PID` (not a terminal's Ctrl-C, which reaches the whole group): the command
    # forwards it, and used to wait instead for its workers to finish 1000 trials.
    process, _, _ = start_and_wait_mid_trial(tmp_path, workers=2, n_trials=1000)
    workers = _running_descendants(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        code, stderr = finish(process, timeout=SIGNAL_TIMEOUT, cwd=tmp_path, log="first")
    finally:
        _wait_for_workers_to_stop(workers, tmp_path)
    assert code == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "run the same command again to resume" in stderr, stderr[-3000:]
    _stopped_trials(tmp_path, "interrupted (KeyboardInterrupt)")


def test_a_command_that_ignores_ctrl_c_keeps_its_workers_going_on_one(tmp_path):
    # A script's background job (`nin-search optimize ... &`) ignores Ctrl-C. Its workers used
    # to stop on a Ctrl-C to the group while the command went on (and Optuna could print a
    # traceback from a trial it was recording).
    process, _, _ = start_and_wait_mid_trial(
        tmp_path, workers=2, n_trials=1000, own_group=True, ignore_sigint=True
    )
    workers = _running_descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(5)
        assert process.poll() is None
        assert _still_running(workers) == workers
        failed = [t for t in fault_trials(tmp_path) if t.state == TrialState.FAIL]
        assert not failed, [t.user_attrs.get("fail_reason") for t in failed]
        process.terminate()  # SIGTERM to the command alone still stops the run
        code, stderr = finish(process, timeout=SIGNAL_TIMEOUT, cwd=tmp_path, log="first")
    finally:
        _wait_for_workers_to_stop(workers, tmp_path)
    assert code == 143, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]


def test_a_worker_killed_in_a_multi_worker_run_makes_the_run_fail(tmp_path):
    started = time.monotonic()
    process, trial, _ = start_and_wait_mid_trial(tmp_path, workers=2, n_trials=4)
    pid = trial.user_attrs["worker"]["pid"]
    assert pid != process.pid  # a worker process, not the parent
    os.kill(pid, signal.SIGKILL)
    code, stderr = finish(process, timeout=RUN_TIMEOUT, cwd=tmp_path, log="first")
    wall = time.monotonic() - started
    numbers = count(fault_trials(tmp_path), stderr)
    report_numbers("sigkill_1_of_2_workers", **numbers.line(), code=code, wall_s=f"{wall:.1f}")
    assert code != 0, stderr[-3000:]  # the study is short of its target: a script must know
    assert fault_trials(tmp_path)[trial.number].state == TrialState.FAIL


def test_a_trial_another_machine_left_running_is_failed_and_queued_once_its_heartbeat_is_stale(
    tmp_path,
):
    # A machine died mid-trial after the others had reached the target: no trial starts again,
    # so Optuna's own check (as each trial starts) never runs. The next optimize fails it.
    from .conftest import run_cli

    write_study(tmp_path)
    assert run_cli("optimize", "study.toml", cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path / 'nin_search.db'}"
    study = optuna.load_study(study_name="tiny", storage=url)
    orphan = study.ask()
    orphan.set_user_attr("worker", {"host": "machine-b", "pid": 4242})
    study._storage.record_heartbeat(orphan._trial_id)  # what its worker did, until it died
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-5 minutes')")
        )
    engine.dispose()

    result = run_cli("optimize", "study.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"failed and re-queued 1 trial(s) [{orphan.number}]" in result.stderr
    assert "1 queued trial(s)" in result.stderr and "wait and run first" in result.stderr
    trials = optuna.load_study(study_name="tiny", storage=url).get_trials()
    assert trials[orphan.number].state == TrialState.FAIL
    assert [t.state for t in trials[orphan.number + 1 :]] == [TrialState.WAITING]  # its retry
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def _server_restart_error() -> Exception:
    """What a trial's database write raises while PostgreSQL restarts (psycopg 3 through
    SQLAlchemy, wrapped by Optuna, then Optuna's own UnboundLocalError in its cleanup)."""
    driver = Exception(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  '
        "the database system is shutting down"
    )
    wrapped = sqlalchemy.exc.OperationalError("SELECT 1", {}, driver)
    try:
        try:
            raise optuna.exceptions.StorageInternalError("invalid data in the commit") from wrapped
        except optuna.exceptions.StorageInternalError:
            raise UnboundLocalError("cannot access local variable 'updated_state'")  # noqa: B904
    except UnboundLocalError as error:
        return error


def test_a_database_server_that_went_away_is_one_line_that_says_a_rerun_resumes():
    from nin_search.storage_messages import describe_lost_connection, describe_storage_error

    line = describe_lost_connection(_server_restart_error())
    assert line is not None and line.startswith("lost the connection to the database server")
    assert "the database system is shutting down" in line and "run the same command again" in line
    assert "\n" not in line
    assert describe_lost_connection(ValueError("a shape error")) is None
    # A server that refuses connections when a command starts is not "lost": that message stays.
    assert describe_storage_error(_server_restart_error()) is None


def test_workers_that_lost_the_server_end_the_run_with_what_to_do(tmp_path):
    from nin_search.errors import EXIT_DATABASE_LOST
    from nin_search.workers import _workers_outcome

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'x.db'}")
    outcome = _workers_outcome(study, [0, EXIT_DATABASE_LOST], interrupted=False, terminated=False)
    assert outcome.exit_code == 1
    assert "lost the connection to the database server" in outcome.message
    assert "run the same command again" in outcome.message


def test_the_trials_of_workers_the_run_waited_for_record_how_each_worker_ended(tmp_path):
    import socket

    from nin_search.errors import EXIT_DATABASE_LOST
    from nin_search.workers import _workers_outcome

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'x.db'}")
    dead_pids = []
    for _ in range(3):  # three processes that have ended, as the workers have when waited for
        process = subprocess.Popen([sys.executable, "-c", "pass"])
        process.wait()
        dead_pids.append(process.pid)
        trial = study.ask()
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": process.pid})
    codes = [EXIT_DATABASE_LOST, -signal.SIGKILL, 1]
    outcome = _workers_outcome(study, codes, interrupted=False, terminated=False, pids=dead_pids)
    assert outcome.exit_code == 1
    failed = study.trials[:3]  # then their retries, queued
    reasons = [trial.user_attrs["fail_reason"] for trial in failed]
    assert reasons[0].endswith("lost the connection to the database server"), reasons
    assert reasons[1].endswith("was killed by SIGKILL"), reasons
    assert reasons[2].endswith("died with exit code 1"), reasons
    assert all(trial.state == TrialState.FAIL for trial in failed)


def test_a_trial_cut_short_by_the_server_going_away_is_retried_not_dropped(tmp_path):
    from nin_search.objective import Objective

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'x.db'}")
    trial = study.ask()

    def body(trial, checkpoint):
        raise _server_restart_error()

    with pytest.raises(UnboundLocalError):
        Objective._guarded(None, trial, body)  # the server is back before the record is written
    attrs = study.trials[0].user_attrs
    assert attrs["retry"] is True and attrs["interrupted"] is True
    assert attrs["fail_reason"].startswith("lost the connection to the database server")


def test_the_ablation_after_a_search_waits_for_the_machine_that_finishes_last(tmp_path):
    # Two machines share a study: the one that finishes first must not ablate a winner the
    # other's running trial may still beat (both would ablate, each its own winner).
    from .conftest import TINY_DIGITS, run_cli

    url = f"sqlite:///{tmp_path / 'nin_search.db'}"
    write_study(tmp_path)
    assert run_cli("optimize", "study.toml", "--n-trials", "2", cwd=tmp_path).returncode == 0
    write_study(tmp_path, TINY_DIGITS + "\n[ablation]\nafter_search = true\nseeds = 1\n")
    study = optuna.load_study(study_name="tiny", storage=url)
    other = study.ask()  # machine B's trial, alive: its heartbeat is fresh
    other.set_user_attr("worker", {"host": "machine-b", "pid": 4242})
    study._storage.record_heartbeat(other._trial_id)

    result = run_cli("optimize", "study.toml", "--n-trials", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"ablation left to the last machine to finish: trial(s) [{other.number}]" in (
        result.stderr
    )
    assert "tiny:ablation" not in optuna.get_all_study_names(url)
    assert "nin-search ablate" in result.stdout  # the next step it still needs


def test_a_command_whose_server_went_away_exits_1_like_a_search_whose_workers_lost_it():
    from nin_search.cli import _database_failure

    message, code = _database_failure(_server_restart_error())
    assert code == 1 and message.startswith("lost the connection to the database server")
    assert _database_failure(ValueError("not a database failure")) is None
