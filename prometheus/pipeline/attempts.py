"""What a step writes, and what it says about it: the phase change, a failed attempt
(counted, explained, scheduled), and the log lines, told once their transaction commits.

A failed attempt is counted in the phase's own transaction whenever it can be, under the
row lock the claim took (a deferred constraint the task broke included: it is checked
inside the task's savepoint). When that transaction is gone (our phase change or the
COMMIT refused, a task that ended it, a timed-out phase whose session was ended) it is
counted *apart*: in a transaction of its own, under the run's lock, and only if nobody
has moved the run on or counted the attempt meanwhile, so it is counted once. Every wait
for that lock is bounded: whoever else holds the run may hold it for a whole phase.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from prometheus.config import Settings
from prometheus.db.driver import driver_connection, driver_sql
from prometheus.db.queries import query
from prometheus.db.sqlstate import LOCK_NOT_AVAILABLE, mapped_errors
from prometheus.errors import IllegalTransition, first_line
from prometheus.logs import get_logger
from prometheus.pipeline.phases import Phase, retry_delay
from prometheus.pipeline.runs import Outcome, Run, Step

log = get_logger(__name__)

MAX_ERROR_CHARS = 2000
#: One wait for a run's lock to count an attempt apart, and how many such waits: a
#: write-up gives up after 15 s rather than queue behind another process's whole phase.
WRITE_UP_WAIT_S = 5.0
WRITE_UP_TRIES = 3
#: Ending a stuck session: how long to wait for the write-up to queue for the run's lock,
#: and for the ended backend to exit (it normally takes milliseconds).
QUEUE_WAIT_S = 2.0
SESSION_EXIT_WAIT_S = 2.0


def write_phase(
    conn: Connection,
    run: Run,
    phase: Phase,
    *,
    actor: str,
    detail: Mapping[str, Any],
    notify: bool,
) -> Run:
    """The phase change itself, in the caller's transaction; the database's guard
    trigger validates it and its audit trigger records who asked and why."""
    params = phase_change_params(run, phase, actor=actor, detail=detail, notify=notify)
    with (
        mapped_errors(),
        driver_connection(conn) as driver,
        driver.cursor(row_factory=dict_row) as cursor,
    ):
        row = cursor.execute(driver_sql(query("update_phase")), params).fetchone()
    if row is None:
        raise IllegalTransition(
            f"run {run.run_id} is no longer in {run.phase}; it changed meanwhile, nothing written"
        )
    return Run.from_mapping(row)


def phase_change_params(
    run: Run, phase: Phase, *, actor: str, detail: Mapping[str, Any], notify: bool
) -> dict[str, Any]:
    """The ``update_phase`` query's parameters: from the phase the run was read in."""
    return {
        "run_id": run.run_id,
        "from_phase": run.phase,
        "to_phase": phase,
        "actor": actor,
        "detail": json.dumps(dict(detail), default=str),
        "notify": notify,
    }


def about(run: Run) -> AbstractContextManager[object]:
    """Every log line about a run carries its run_id, as_of_date, region and phase."""
    return structlog.contextvars.bound_contextvars(
        run_id=run.run_id,
        as_of_date=run.as_of_date.isoformat(),
        region=run.region,
        phase=str(run.phase),
    )


@dataclass(frozen=True)
class News:
    """A log line about a write, held until the write has committed: a line that says a
    phase completed or a run failed is only ever written once that is true."""

    level: int
    event: str
    fields: Mapping[str, Any]

    def tell(self) -> None:
        log.log(self.level, self.event, **self.fields)


def record_failure(
    conn: Connection, run: Run, exc: Exception, *, settings: Settings, actor: str
) -> tuple[Step, News]:
    """Count, explain and schedule a failed attempt in the caller's transaction, which
    holds the run's lock; the run is FAILED after its last attempt."""
    attempts = run.attempts + 1
    error = describe(exc)
    last = attempts >= settings.max_attempts
    retry_in = retry_delay(attempts, settings.retry_base)
    detail: dict[str, Any] = {"error": error, "attempt": attempts, "where": _where(exc)}
    if not last:
        detail["retry_in_s"] = retry_in.total_seconds()
    conn.execute(
        query("record_failed_attempt"),
        {
            "run_id": run.run_id,
            "attempts": attempts,
            "error": error,
            "retry_in_s": 0.0 if last else retry_in.total_seconds(),
            "actor": actor,
            "detail": json.dumps(detail),
        },
    )
    if not last:
        after = Run.from_row(conn.execute(query("get_run"), {"run_id": run.run_id}).one())
        news = News(
            logging.WARNING,
            "phase.failed",
            {"attempt": attempts, "error": error, "retry_in_s": detail["retry_in_s"]},
        )
        return Step(Outcome.RETRY_SCHEDULED, after, error, run.phase), news
    failed = write_phase(
        conn,
        run,
        Phase.FAILED,
        actor=actor,
        detail={"error": error, "attempts": attempts},
        notify=True,
    )
    news = News(logging.ERROR, "run.failed", {"attempt": attempts, "error": error})
    return Step(Outcome.FAILED, failed, error, run.phase), news


def record_apart(
    db: Engine,
    run: Run,
    exc: Exception,
    *,
    settings: Settings,
    actor: str,
    holder: int | None = None,
) -> Step:
    """Count a failed attempt of ``run`` (as it was claimed) in a transaction of its own.

    ``holder`` is the backend of a stuck phase that still holds the run: it is ended once
    this write-up is queued for the run's lock. A waiter queued on a row is served before
    any ``SKIP LOCKED`` claim when the lock frees, so no claim can take the run (due, with
    nothing recorded yet) and run the phase again before its timed-out attempt counts.
    """
    for tries_left in reversed(range(WRITE_UP_TRIES)):
        ending: Future[bool] | None = None
        try:
            with db.connect() as conn, conn.begin():
                conn.execute(query("set_lock_timeout"), {"ms": int(WRITE_UP_WAIT_S * 1000)})
                if holder is not None:
                    ending = _end_when_queued(db, holder, waiter=_backend_pid(conn))
                row = conn.execute(query("lock_run"), {"run_id": run.run_id}).one_or_none()
                fresh = Run.from_row(row) if row is not None else None
                if fresh is None or fresh.phase is not run.phase or fresh.attempts != run.attempts:
                    return Step(Outcome.BUSY, fresh)  # moved on, or counted already
                step, news = record_failure(conn, fresh, exc, settings=settings, actor=actor)
        except DBAPIError as error:
            if not _lock_wait_timed_out(error):
                raise
        else:
            with about(run):
                news.tell()
            return step
        finally:
            ended = ending is not None and ending.result()
        with about(run):
            if holder is not None and not ended:
                # The stuck phase keeps the run, so nobody else can step it: its worker
                # counts the timeout itself if its task ever returns.
                log.error("phase.session_not_ended", pid=holder)
                return Step(Outcome.BUSY, None)
            holder = None  # ended: it is another session that holds the run now
            if tries_left:
                log.warning(
                    "attempt.count_delayed", waited_s=WRITE_UP_WAIT_S, tries_left=tries_left
                )
    with about(run):
        log.error(
            "attempt.uncounted", error=describe(exc), waited_s=WRITE_UP_WAIT_S * WRITE_UP_TRIES
        )
    return Step(Outcome.BUSY, None)


def _end_when_queued(db: Engine, holder: int, *, waiter: int) -> Future[bool]:
    """In a thread of its own (the waiter's statement blocks its thread): wait until
    ``waiter`` waits for a lock, then end ``holder``'s session; True once it is gone."""
    result: Future[bool] = Future()

    def end() -> None:
        try:
            with db.connect() as conn:
                deadline = time.monotonic() + QUEUE_WAIT_S
                while (
                    time.monotonic() < deadline
                    and not conn.execute(query("waits_for_lock"), {"pid": waiter}).scalar_one()
                ):
                    time.sleep(0.01)
                gone = conn.execute(
                    query("end_session"),
                    {"pid": holder, "wait_ms": int(SESSION_EXIT_WAIT_S * 1000)},
                ).scalar_one()
                conn.commit()
            result.set_result(bool(gone))
        except Exception as exc:  # the outermost frame of this thread: say it, never raise
            log.warning("phase.end_session_failed", pid=holder, error=first_line(exc))
            result.set_result(False)

    threading.Thread(target=end, name="phase-end-session", daemon=True).start()
    return result


def _backend_pid(conn: Connection) -> int:
    """This transaction's server process, asked of the server: behind a transaction pooler
    the connection's startup key is the pooler's, and names no backend."""
    pid: int = conn.execute(query("backend_pid")).scalar_one()
    return pid


def _lock_wait_timed_out(error: DBAPIError) -> bool:
    return isinstance(error.orig, psycopg.Error) and error.orig.sqlstate == LOCK_NOT_AVAILABLE


def describe(exc: BaseException) -> str:
    """One line for last_error: the driver's own error rather than SQLAlchemy's wrapper,
    which would repeat the whole statement and its parameters."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = f"{type(exc).__name__}: {exc}".strip().replace("\x00", "")  # text can't hold NUL
    return text[:MAX_ERROR_CHARS]


def _where(exc: BaseException) -> str:
    """The innermost frame, so an operator knows where to look without a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}".replace("\x00", "") if frames else ""
