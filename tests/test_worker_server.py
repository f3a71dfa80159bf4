"""Workers start from a fork server that imported torch once, and see the starting command's
environment."""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing
import sys

import pytest

from nin_search.worker_server import WORKER_MODULES, start_worker_server, worker_context
from nin_search.workers import adopt_environment


def _report(environment: dict[str, str], queue) -> None:  # runs in the worker process
    adopt_environment(environment)
    import os

    queue.put((os.environ.get("NIN_SEARCH_TEST_MARK"), "torch" in sys.modules))


def test_every_preloaded_module_imports():
    for name in WORKER_MODULES:
        if name != "nin_search.worker_server_signals":  # this process would ignore Ctrl-C
            importlib.import_module(name)
    assert importlib.util.find_spec("nin_search.worker_server_signals") is not None


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here"
)
def test_a_worker_forked_later_sees_the_current_environment_and_preloaded_torch(monkeypatch):
    import os

    from nin_search.worker_server import START_METHOD_ENV

    monkeypatch.delenv(START_METHOD_ENV, raising=False)  # the default, whatever the shell set
    context = worker_context()
    assert context.get_start_method() == "forkserver"
    start_worker_server()  # the server's environment is this one, without the mark
    monkeypatch.setenv("NIN_SEARCH_TEST_MARK", "after the server started")
    queue = context.Queue()
    process = context.Process(target=_report, args=(dict(os.environ), queue))
    process.start()
    mark, torch_loaded = queue.get(timeout=120)
    process.join(timeout=60)
    assert process.exitcode == 0
    assert mark == "after the server started"
    assert torch_loaded  # imported by the server before the fork, not by the worker


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here"
)
def test_a_ctrl_c_while_the_fork_server_imports_torch_prints_nothing():
    # Ctrl-C reaches the whole process group, the fork server too. Python's server ignores it
    # only once its preload imports (seconds, for torch) are done.
    import os
    import signal
    import subprocess
    import time

    code = (
        "import signal, sys, time\n"
        "from multiprocessing import forkserver\n"
        "from nin_search.worker_server import worker_context\n"
        "worker_context()\n"
        "forkserver.ensure_running()\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command's own Ctrl-C: not tested\n"
        "print('started', flush=True)\n"
        "time.sleep(float(sys.argv[1]))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "NIN_SEARCH_START_METHOD"}
    process = subprocess.Popen([sys.executable, "-c", code, "8"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)  # fmt: skip
    assert process.stdout.readline() == "started\n"
    time.sleep(1.0)  # the server has started Python and is importing torch (2-4 s here)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
