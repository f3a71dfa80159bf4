"""optuna-dashboard for nin-search studies: its WSGI app on a threaded :mod:`wsgiref` server
that logs nothing, with the study note (:mod:`nin_search.study_note`) refreshed when it starts.
Nothing here prints.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
import optuna_dashboard

from nin_search.artifacts import READ_ARTIFACTS_FIX, artifact_dir_for, forget_missing_weights
from nin_search.compat import study_id_of
from nin_search.config import DASHBOARD_HOST, DASHBOARD_PORT
from nin_search.errors import UserError
from nin_search.outputs import check_input_folder
from nin_search.storage import check_storage_url, open_storage
from nin_search.storage_messages import study_options
from nin_search.study import load_studies, load_study
from nin_search.study_note import refresh_study_note

__all__ = [
    "Dashboard",
    "forget_missing_artifacts",
    "make_app",
    "make_http_server",
    "open_dashboard",
    "serve",
]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A WSGI server that answers each request on its own thread (the page loads in parallel)."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """Logs no request lines (only the CLI prints)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _artifact_folder(storage_url: str, artifact_dir: str | Path | None) -> Path | None:
    """The folder of trained weights: ``artifact_dir``, else the folder `optimize` defaults to.

    With no ``artifact_dir`` and no default folder, the dashboard runs without artifacts.
    """
    if artifact_dir is not None:
        check_input_folder("--artifact-dir", Path(artifact_dir), READ_ARTIFACTS_FIX)
        return Path(artifact_dir).expanduser().resolve()
    directory = artifact_dir_for(storage_url)
    return directory if directory.is_dir() else None


def forget_missing_artifacts(
    storage_url: str, studies: list[optuna.Study], *, artifact_dir: str | Path | None = None
) -> dict[str, list[int]]:
    """Drops the artifact entries whose files are gone, so the dashboard lists only files that
    exist (see :func:`nin_search.artifacts.forget_missing_weights`).

    Args:
        storage_url: The storage.
        studies: The studies to check.
        artifact_dir: As for :func:`make_app`.

    Returns:
        Study name -> numbers of the trials whose entries were removed (empty without a store).
    """
    folder = _artifact_folder(storage_url, artifact_dir)
    if folder is None:
        return {}
    return {study.study_name: forget_missing_weights(study, folder) for study in studies}


def make_app(storage_url: str, *, artifact_dir: str | Path | None = None) -> Any:
    """optuna-dashboard's WSGI app for every study in a storage.

    Args:
        storage_url: An Optuna RDB URL (``sqlite:///nin_search.db``, ``postgresql+psycopg://...``).
        artifact_dir: The artifact store folder with the trained weights; ``None`` uses the
            folder ``nin-search optimize`` uses by default (beside the SQLite file) when it
            exists, else the dashboard shows no artifacts.

    Returns:
        The WSGI application.

    Raises:
        UserError: For a bad storage URL, a missing SQLite file or a missing ``artifact_dir``.
    """
    check_storage_url(storage_url, must_exist=True)
    folder = _artifact_folder(storage_url, artifact_dir)
    store = None if folder is None else optuna.artifacts.FileSystemArtifactStore(folder)
    storage = open_storage(storage_url, heartbeat=False, create=False)  # never a new schema
    return optuna_dashboard.wsgi(storage, artifact_store=store)


def make_http_server(
    storage_url: str,
    *,
    host: str = DASHBOARD_HOST,
    port: int = DASHBOARD_PORT,
    artifact_dir: str | Path | None = None,
) -> WSGIServer:
    """A threaded, quiet HTTP server for :func:`make_app`, bound but not yet serving.

    Args:
        storage_url: An Optuna RDB URL.
        host: The address to listen on (``0.0.0.0`` for every interface).
        port: The port; 0 picks a free one (read it from ``server.server_port``).
        artifact_dir: As for :func:`make_app`.

    Returns:
        The server; call ``serve_forever()``, and ``server_close()`` when done.

    Raises:
        UserError: For a bad storage or artifact folder, or a port that is taken.
    """
    app = make_app(storage_url, artifact_dir=artifact_dir)
    try:
        return make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use; pass another --port") from None
        raise UserError(
            f"cannot listen on {host}:{port} ({error.strerror}); check --host"
        ) from None


@dataclass(frozen=True)
class Dashboard:
    """A dashboard bound to its port, not yet serving (see :func:`open_dashboard`)."""

    server: WSGIServer
    url: str  # the page to open
    forgotten: dict[str, list[int]]  # study name -> trials whose lost weights were dropped


def open_dashboard(
    storage_url: str,
    *,
    host: str = DASHBOARD_HOST,
    port: int = DASHBOARD_PORT,
    artifact_dir: str | Path | None = None,
    study_name: str | None = None,
) -> Dashboard:
    """Binds the dashboard's server and makes the studies ready to show: each searched study
    (or ``study_name`` alone) gets its note refreshed, and artifact entries of lost weights
    are dropped.

    Args:
        storage_url: An Optuna RDB URL.
        host: The address to listen on.
        port: The port; 0 picks a free one.
        artifact_dir: As for :func:`make_app`.
        study_name: Open this study's page; None for the list of every study.

    Raises:
        UserError: As :func:`make_http_server`, or for an unknown study.
    """
    # Not read-only: the dashboard writes study notes (and whatever its users do there).
    # Companion ablation studies get no note of their own.
    studies = (
        [load_study(storage_url, study_name, read_only=False)]
        if study_name
        else load_studies(storage_url, read_only=False)
    )
    server = make_http_server(storage_url, host=host, port=port, artifact_dir=artifact_dir)
    for study in studies:
        refresh_study_note(study, where=study_options(storage_url, study.study_name))
    forgotten = forget_missing_artifacts(storage_url, studies, artifact_dir=artifact_dir)
    url = f"http://{host}:{server.server_port}/dashboard/"
    if study_name:
        url += f"studies/{study_id_of(studies[0])}"
    return Dashboard(server=server, url=url, forgotten=forgotten)


def serve(server: WSGIServer) -> None:
    """Serves until Ctrl-C, then closes the server and returns."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
