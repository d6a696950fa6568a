"""The embedded PostgreSQL (``pgserver``), for a machine where nothing is configured.

Its data lives under ``PROMETHEUS_HOME``; it is started on demand and left running
(``cleanup_mode=None``) so the next command reuses it instead of paying a start-up
(about five seconds the first time, when ``initdb`` runs). Its lifecycle is explicit:
``embedded_server`` says whether it runs and where, ``stop_embedded_server`` stops it
(``prometheus db status`` and ``prometheus db stop``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus.config import Settings
from prometheus.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class EmbeddedServer:
    """The embedded server under ``pgdata``: ``pid`` and ``url`` are None when it is not
    running (``initialized`` says whether it has ever been created)."""

    pgdata: Path
    initialized: bool
    pid: int | None = None
    url: str | None = None

    @property
    def running(self) -> bool:
        return self.pid is not None


def embedded_server(pgdata: Path) -> EmbeddedServer:
    """Whether the server under ``pgdata`` runs, and where; starts nothing."""
    if not (pgdata / "PG_VERSION").exists():
        return EmbeddedServer(pgdata, initialized=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # see embedded_database_url
        from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return EmbeddedServer(pgdata, initialized=True)
    return EmbeddedServer(pgdata, initialized=True, pid=info.pid, url=info.get_uri())


def stop_embedded_server(pgdata: Path) -> EmbeddedServer:
    """Stop the server under ``pgdata`` (fast shutdown: open sessions are ended) and
    return how it was before; a server that is not running is left as it is."""
    before = embedded_server(pgdata)
    if before.running:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # see embedded_database_url
            import pgserver

        # pgserver makes a function per binary it ships at import time: no static name.
        pg_ctl: Callable[..., str] = getattr(pgserver, "pg_ctl")  # noqa: B009
        # It runs the server as its own system user when started by root.
        user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return before


def embedded_database_url(pgdata: Path) -> str:
    """Start (or find running) the embedded server and return its URL."""
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns, when pgserver is imported, that XDG_RUNTIME_DIR is unset
        # (cron, containers) and falls back to /tmp: what we want anyway.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

        server = get_server(pgdata, cleanup_mode=None)
    url: str = server.get_uri()
    return url


def log_embedded(server: EmbeddedServer) -> None:
    log.info(
        "database.embedded",
        pgdata=str(server.pgdata),
        starting=not server.running,
        hint="set PROMETHEUS_DATABASE_URL to use another server",
    )


def with_database(
    settings: Settings, *, announce: Callable[[EmbeddedServer], None] = log_embedded
) -> Settings:
    """Settings that name a database: the configured one, or else the embedded server's.
    ``announce`` is told which (running or about to start), so that nobody mistakes it
    for production: a log line by default, the CLI's own line on stderr."""
    if settings.database_url is not None:
        return settings
    announce(embedded_server(settings.embedded_home))
    return settings.with_database_url(embedded_database_url(settings.embedded_home))
