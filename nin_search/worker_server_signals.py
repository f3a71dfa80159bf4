"""Imported by multiprocessing's fork server only, as the first of
:data:`nin_search.worker_server.WORKER_MODULES`: the server ignores SIGINT and SIGTERM from
before it imports anything.

Python's fork server ignores SIGINT, so that Ctrl-C, which reaches the whole process group,
stops the command and its workers but not the server they are forked from; but only once it
has imported its preload modules (torch takes seconds), so a Ctrl-C in a command's first
seconds printed the server's ``KeyboardInterrupt`` traceback. SIGTERM sent to the group
(``kill -TERM -PGID``, systemd, Slurm) would otherwise end the server first, and with it the
way the command learns its workers' exit codes (they read 255). The server still ends with
the command: it exits when the command's end closes its pipe. A worker forked from the server
starts with both ignored and installs its own handlers as it starts
(``nin_search.workers.start_worker``).

Do not import this module anywhere else: the importing process would ignore Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
