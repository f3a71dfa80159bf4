import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nin_search.outputs import STALE_PARTIAL_SECONDS, write_text_atomic


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_later_write_removes_old_partials_of_dead_processes_and_nothing_else(tmp_path):
    target = tmp_path / "report.html"
    old = time.time() - STALE_PARTIAL_SECONDS - 60
    stale = tmp_path / f".report.html.{dead_pid()}-0123abcd.partial"
    recent = tmp_path / f".report.html.{dead_pid()}-4567abcd.partial"  # may still be written
    alive = tmp_path / f".report.html.{os.getppid()}-89abcdef.partial"
    other = tmp_path / f".other.html.{dead_pid()}-0123abcd.partial"
    for path in (stale, recent, alive, other):
        path.write_text("half")
    for path in (stale, alive, other):
        os.utime(path, (old, old))
    write_text_atomic(target, "whole")
    assert target.read_text() == "whole"
    assert not stale.exists()
    assert recent.exists() and alive.exists() and other.exists()


def test_sigterm_mid_write_leaves_no_partial_file(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from nin_search.outputs import write_atomic

        def write(path):
            path.write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
            path.write_text("never")

        write_atomic(Path({str(tmp_path / "report.html")!r}), write)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == 128 + signal.SIGTERM
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_a_file_under_dev_shm_is_a_file_and_dev_stdout_a_stream(tmp_path):
    from nin_search.outputs import written_in_place

    shm = Path("/dev/shm") / f"nin-search-test-{os.getpid()}.py"
    shm.write_text("old\n")
    try:
        assert not written_in_place(shm)  # replaced by a rename, like any file
        write_text_atomic(shm, "new\n")
        assert shm.read_text() == "new\n"
    finally:
        shm.unlink(missing_ok=True)
    assert written_in_place(Path("/dev/stdout")) and written_in_place(Path("/dev/null"))
