"""The reactor's heartbeat row: `prometheus check` reports a reactor whose heartbeat
stopped without a clean stop (REACTOR_SILENT), or whose listener cannot hear
(LISTENER_DEAF)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from prometheus.db.queries import query
from prometheus.logs import get_logger

log = get_logger(__name__)


def beat(
    engine: Engine, *, reactor_id: str, listener: Callable[[], tuple[bool | None, str | None]]
) -> None:
    """The heartbeat service's step: this reactor is alive, and whether its listener
    hears (``listener()``: proven or not, and why not)."""
    hears, problem = listener()
    with engine.begin() as conn:
        conn.execute(
            query("heartbeat"),
            {
                "reactor_id": reactor_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "listener_hears": hears,
                "listener_problem": problem,
            },
        )


def mark_stopped(engine: Engine, *, reactor_id: str) -> None:
    """A clean stop, on the way out: the database may be gone, and that is no reason to
    fail the stop."""
    try:
        with engine.begin() as conn:
            conn.execute(query("heartbeat_stopped"), {"reactor_id": reactor_id})
    except SQLAlchemyError:
        log.warning("heartbeat.failed", stopping=True)
