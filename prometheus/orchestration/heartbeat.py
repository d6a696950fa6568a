"""The reactor's heartbeat row: `prometheus check` reports a reactor whose heartbeat
stopped without a clean stop (REACTOR_SILENT)."""

from __future__ import annotations

import os
import socket

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from prometheus.db.queries import query
from prometheus.logs import get_logger

log = get_logger(__name__)


def beat(engine: Engine, *, reactor_id: str) -> None:
    """The heartbeat service's step: this reactor is alive."""
    with engine.begin() as conn:
        conn.execute(
            query("heartbeat"),
            {"reactor_id": reactor_id, "host": socket.gethostname(), "pid": os.getpid()},
        )


def mark_stopped(engine: Engine, *, reactor_id: str) -> None:
    """A clean stop, on the way out: the database may be gone, and that is no reason to
    fail the stop."""
    try:
        with engine.begin() as conn:
            conn.execute(query("heartbeat_stopped"), {"reactor_id": reactor_id})
    except SQLAlchemyError:
        log.warning("heartbeat.failed", stopping=True)
