"""The embedded PostgreSQL (``pgserver``), for a machine where nothing is configured.

Its data lives under ``PROMETHEUS_HOME``; it is started on demand and left running
(``cleanup_mode=None``) so the next command reuses it instead of paying a start-up.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from prometheus.config import Settings
from prometheus.logs import get_logger

log = get_logger(__name__)


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


def with_database(settings: Settings) -> Settings:
    """Settings that name a database: the configured one, or else the embedded server's
    (said on stderr, so nobody mistakes it for production)."""
    if settings.database_url is not None:
        return settings
    home = settings.embedded_home
    log.warning(
        "database.embedded",
        home=str(home),
        hint="set PROMETHEUS_DATABASE_URL to use another server",
    )
    return settings.with_database_url(embedded_database_url(home))
