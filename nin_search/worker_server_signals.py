"""Imported by multiprocessing's fork server only, as the last of
:data:`nin_search.worker_server.WORKER_MODULES`: the server ignores SIGTERM.

Python's fork server already ignores SIGINT, so that Ctrl-C, which reaches the whole process
group, stops the command and its workers but not the server they are forked from. SIGTERM
sent to the group (``kill -TERM -PGID``, systemd, Slurm) would otherwise end the server
first, and with it the way the command learns its workers' exit codes (they read 255). The
server still ends with the command: it exits when the command's end closes its pipe. Workers
install their own SIGTERM handler as they start (``nin_search.workers.run_worker``).

Do not import this module anywhere else: the importing process would ignore SIGTERM.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
