"""Database errors that mean something to the engine, mapped to its own exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.exc import DBAPIError

from prometheus.errors import IllegalTransition, RunBusy, StandbyServer

#: Raised by the transition guard trigger (sql/triggers/0004_engine_runs.sql).
ILLEGAL_TRANSITION = "PX001"
#: A ``FOR NO KEY UPDATE NOWAIT`` that found the row locked (by a running phase).
LOCK_NOT_AVAILABLE = "55P03"
#: A write refused by a read-only server: a standby (in recovery), or a primary with
#: ``default_transaction_read_only``.
READ_ONLY_SQL_TRANSACTION = "25006"
#: ...and ``BEGIN READ WRITE`` on a standby ("cannot set transaction read-write mode
#: during recovery").
FEATURE_NOT_SUPPORTED = "0A000"


def is_standby_error(exc: BaseException) -> bool:
    """Whether the server refused the statement because it cannot write: a standby, or
    a primary demoted meanwhile. Not the statement's fault: reconnect (libpq's
    ``target_session_attrs=read-write`` finds the primary) and try again."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(orig, psycopg.Error):
        return False
    if orig.sqlstate == READ_ONLY_SQL_TRANSACTION:
        return True
    message = orig.diag.message_primary or ""
    return orig.sqlstate == FEATURE_NOT_SUPPORTED and "during recovery" in message


def standby_error(where: str) -> StandbyServer:
    """The one line an operator needs: which server (``where``: the redacted URL), what
    it is, and what to set."""
    return StandbyServer(
        f"the server at {where} is a standby (in recovery) or read-only: point"
        " PROMETHEUS_DATABASE_URL at the primary, or list every server and add"
        " target_session_attrs=read-write"
    )


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
