"""Database errors that mean something to the engine, mapped to its own exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.exc import DBAPIError

from prometheus.errors import IllegalTransition, RunBusy

#: Raised by the transition guard trigger (sql/triggers/0004_engine_runs.sql).
ILLEGAL_TRANSITION = "PX001"
#: A ``FOR NO KEY UPDATE NOWAIT`` that found the row locked (by a running phase).
LOCK_NOT_AVAILABLE = "55P03"


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Turn the guard trigger's refusal into IllegalTransition and a NOWAIT lock refusal
    into RunBusy; let the rest through."""
    try:
        yield
    except DBAPIError as exc:
        orig = exc.orig
        if isinstance(orig, psycopg.Error) and orig.sqlstate == ILLEGAL_TRANSITION:
            raise IllegalTransition(orig.diag.message_primary or "illegal transition") from None
        if isinstance(orig, psycopg.Error) and orig.sqlstate == LOCK_NOT_AVAILABLE:
            raise RunBusy(
                "the run is being advanced right now (a phase is running): "
                "try again when it has finished"
            ) from None
        raise
