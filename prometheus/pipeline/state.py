"""The state-machine API (SPEC section 4): the only helpers every trigger path calls.

Cron, the reactor, the CLI and a DAG orchestrator all *ask* for transitions through
these functions; the rules (order, retries, backoff) live here and in the database.

Single execution: ``advance_run`` holds the run's row lock (``FOR UPDATE SKIP LOCKED``)
for the whole phase transaction, so two processes never run one run's phase at once,
and the task's writes commit together with the phase change, so a phase is never
applied twice and a crash leaves neither. A killed process's lock dies with its session.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, Row, TextClause
from sqlalchemy.exc import DBAPIError

from prometheus.config import Settings
from prometheus.db.queries import query
from prometheus.db.sqlstate import mapped_errors
from prometheus.errors import IllegalTransition
from prometheus.logs import get_logger
from prometheus.pipeline.context import TaskContext
from prometheus.pipeline.deadlines import WATCHDOG
from prometheus.pipeline.phases import NEXT, TERMINAL, Phase, is_legal, retry_delay
from prometheus.pipeline.registry import phase_tasks

log = get_logger(__name__)

Database = Engine | Connection
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Run:
    run_id: int
    as_of_date: date
    region: str
    phase: Phase
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    phase_changed_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Run:
        m = row._mapping
        return cls(
            run_id=m["run_id"],
            as_of_date=m["as_of_date"],
            region=m["region"],
            phase=Phase(m["phase"]),
            attempts=m["attempts"],
            last_error=m["last_error"],
            next_attempt_at=m["next_attempt_at"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            phase_changed_at=m["phase_changed_at"],
        )


@dataclass(frozen=True)
class Event:
    event_id: int
    run_id: int
    kind: str
    from_phase: str | None
    to_phase: str
    at: datetime
    actor: str
    detail: dict[str, Any]


class Outcome(StrEnum):
    """What one ``advance_run`` call did."""

    ADVANCED = "advanced"  # the phase's task ran and the run moved on
    WAITING = "waiting"  # WAITING_FOR_DATA: nothing to do until the data is in
    TERMINAL = "terminal"  # COMPLETED or FAILED already
    BACKING_OFF = "backing_off"  # a failed attempt's backoff has not elapsed
    BUSY = "busy"  # another process holds the run (or it does not exist)
    RETRY_SCHEDULED = "retry_scheduled"  # the attempt failed; retried after the backoff
    FAILED = "failed"  # the attempt failed and that was the last one: the run is FAILED


@dataclass(frozen=True)
class Step:
    outcome: Outcome
    run: Run | None  # as the step left it
    error: str | None = None
    phase: Phase | None = None  # the phase whose task ran, if one did

    @property
    def should_continue(self) -> bool:
        """Whether stepping the same run again right away can make progress."""
        return (
            self.outcome is Outcome.ADVANCED
            and self.run is not None
            and (self.run.phase not in TERMINAL and self.run.phase is not Phase.WAITING_FOR_DATA)
        )


@contextmanager
def _transaction(db: Database) -> Iterator[Connection]:
    """Use the caller's connection (and transaction) if given one, else open our own."""
    if isinstance(db, Connection):
        yield db
    else:
        with db.begin() as conn:
            yield conn


def get_or_create_run(db: Database, as_of_date: date, region: str, *, actor: str = "db") -> Run:
    """The run of (as_of_date, region), created in WAITING_FOR_DATA if missing.
    Safe to call from many connections at once: exactly one row results."""
    with _transaction(db) as conn:
        params = {"as_of_date": as_of_date, "region": region, "actor": actor}
        conn.execute(query("insert_run"), params)
        # Read it back in a statement of its own: it may have existed, a concurrent creator
        # may have committed it first, or the insert's triggers may have moved it on.
        return Run.from_row(conn.execute(query("find_run"), params).one())


def ensure_run(db: Database, as_of_date: date, region: str, *, data_ready: bool, actor: str) -> Run:
    """The seed's ``--ensure [--data-ready]``: create the run, and optionally declare its
    data ready. Safe to repeat: a run already past WAITING_FOR_DATA is left as it is."""
    with _transaction(db) as conn:
        run = get_or_create_run(conn, as_of_date, region, actor=actor)
        if data_ready and run.phase is Phase.WAITING_FOR_DATA:
            # Decide under the row lock: another writer (the readiness trigger, a second
            # cron job) may be making it ready right now, and that is success, not a race.
            run = Run.from_row(conn.execute(query("lock_run"), {"run_id": run.run_id}).one())
            if run.phase is Phase.WAITING_FOR_DATA:
                run = update_phase(conn, run, Phase.DATA_READY, actor=actor)
        return run


def find_run(db: Database, as_of_date: date, region: str) -> Run | None:
    with _transaction(db) as conn:
        params = {"as_of_date": as_of_date, "region": region}
        row = conn.execute(query("find_run"), params).one_or_none()
        return Run.from_row(row) if row else None


def get_run(db: Database, run_id: int) -> Run | None:
    with _transaction(db) as conn:
        row = conn.execute(query("get_run"), {"run_id": run_id}).one_or_none()
        return Run.from_row(row) if row else None


def list_runs(db: Database, *, phase: Phase | None = None, region: str | None = None) -> list[Run]:
    with _transaction(db) as conn:
        rows = conn.execute(query("list_runs"), {"phase": phase, "region": region})
        return [Run.from_row(r) for r in rows]


def list_active_runs(db: Database) -> list[Run]:
    """Runs not COMPLETED or FAILED, oldest date first."""
    with _transaction(db) as conn:
        return [Run.from_row(r) for r in conn.execute(query("list_active_runs"))]


def list_due_run_ids(db: Database, *, limit: int = 100_000) -> list[int]:
    """Runs with work to do now: workable phase, not backing off (the sweep's question)."""
    with _transaction(db) as conn:
        return list(conn.execute(query("list_due_runs"), {"limit": limit}).scalars())


def seconds_until_next_retry(db: Database) -> float | None:
    with _transaction(db) as conn:
        seconds = conn.execute(query("next_retry_in")).scalar_one()
        return float(seconds) if seconds is not None else None


def run_events(db: Database, run_id: int) -> list[Event]:
    with _transaction(db) as conn:
        rows = conn.execute(query("run_events"), {"run_id": run_id})
        return [Event(**r._mapping) for r in rows]


def update_phase(
    db: Database,
    run: Run,
    phase: Phase,
    *,
    actor: str,
    detail: Mapping[str, Any] | None = None,
    force: bool = False,
    notify: bool = True,
) -> Run:
    """Move ``run`` from the phase it was read in to ``phase``, audited as ``actor``.

    Refused (IllegalTransition) if the move is not in the transition table (unless
    ``force``, for audited overrides) or if the run left that phase meanwhile. The
    database's guard trigger enforces the same table for any other writer.
    """
    if not force and not is_legal(run.phase, phase):
        raise IllegalTransition(f"illegal transition: {run.phase} -> {phase} (run {run.run_id})")
    params = {
        "run_id": run.run_id,
        "from_phase": run.phase,
        "to_phase": phase,
        "actor": actor,
        "detail": json.dumps(dict(detail or {}), default=str),
        "force": "on" if force else "off",
        "notify": "on" if notify else "off",
    }
    with _transaction(db) as conn, mapped_errors():
        row = conn.execute(query("update_phase"), params).one_or_none()
    if row is None:
        raise IllegalTransition(
            f"run {run.run_id} is no longer in {run.phase}; it changed meanwhile, nothing written"
        )
    return Run.from_row(row)


def advance_run(
    db: Engine, run: Run | int, *, settings: Settings, actor: str, notify: bool = True
) -> Step:
    """Take the run one step (SPEC section 4's table) in one transaction.

    ``notify=False`` is for a caller that will keep stepping this run itself: the phase
    change then wakes nobody, which spares a NOTIFY (a cluster-wide lock at commit).
    """
    run_id = run if isinstance(run, int) else run.run_id
    return _claim_and_step(
        db, query("claim_run"), {"run_id": run_id}, settings=settings, actor=actor, notify=notify
    ) or Step(Outcome.BUSY, None)


def advance_next(db: Engine, *, settings: Settings, actor: str, notify: bool = True) -> Step | None:
    """One step of the oldest due run that no other process holds; None if there is none.

    This is how workers share work: a notification only says "there may be work", and
    each worker claims what is due, so several reactors never queue or try the same run.
    """
    return _claim_and_step(
        db, query("claim_next_run"), {}, settings=settings, actor=actor, notify=notify
    )


def count_due_runs(db: Database) -> int:
    with _transaction(db) as conn:
        count: int = conn.execute(query("count_due_runs")).scalar_one()
        return count


def _claim_and_step(
    db: Engine,
    claim: TextClause,
    params: Mapping[str, Any],
    *,
    settings: Settings,
    actor: str,
    notify: bool,
) -> Step | None:
    with db.connect() as conn, conn.begin():
        row = conn.execute(claim, params).one_or_none()
        if row is None:
            return None
        claimed = Run.from_row(row)
        if claimed.phase in TERMINAL:
            return Step(Outcome.TERMINAL, claimed)
        if claimed.phase is Phase.WAITING_FOR_DATA:
            return Step(Outcome.WAITING, claimed)
        if not row.due:
            return Step(Outcome.BACKING_OFF, claimed)
        with structlog.contextvars.bound_contextvars(
            run_id=claimed.run_id,
            as_of_date=claimed.as_of_date.isoformat(),
            region=claimed.region,
            phase=str(claimed.phase),
        ):
            return _run_phase(conn, claimed, settings=settings, actor=actor, notify=notify)


def advance_all(db: Engine, *, settings: Settings, actor: str) -> list[Step]:
    """One step for every run that has work due now (the seed's ``--advance-all``)."""
    return [
        advance_run(db, run_id, settings=settings, actor=actor) for run_id in list_due_run_ids(db)
    ]


def _run_phase(conn: Connection, run: Run, *, settings: Settings, actor: str, notify: bool) -> Step:
    task = phase_tasks(settings.phase_tasks)[run.phase]
    attempt = run.attempts + 1
    ctx = TaskContext(
        run_id=run.run_id,
        as_of_date=run.as_of_date,
        region=run.region,
        phase=str(run.phase),
        attempt=attempt,
        conn=conn,
        log=log,
    )
    driver = conn.connection.driver_connection
    started = time.monotonic()
    log.debug("phase.started", attempt=attempt)
    try:
        # The savepoint lets a failure roll back the task's writes while this transaction
        # keeps the row lock to record the failed attempt: no other process can slip in
        # between and retry before the backoff is written.
        with (
            conn.begin_nested(),
            WATCHDOG.guard(settings.phase_timeout.total_seconds(), driver.cancel_safe) as deadline,  # type: ignore[union-attr]  # psycopg connection
        ):
            try:
                task(ctx)
            finally:
                deadline.check()
    except Exception as exc:
        return _record_failure(conn, run, exc, settings=settings, actor=actor)
    duration_s = time.monotonic() - started
    after = update_phase(
        conn,
        run,
        NEXT[run.phase],
        actor=actor,
        detail={"duration_s": round(duration_s, 6), "attempt": attempt},
        notify=notify,
    )
    log.info("phase.completed", duration_s=round(duration_s, 6), to_phase=str(after.phase))
    return Step(Outcome.ADVANCED, after, phase=run.phase)


def _record_failure(
    conn: Connection, run: Run, exc: Exception, *, settings: Settings, actor: str
) -> Step:
    attempts = run.attempts + 1
    error = _describe(exc)
    last = attempts >= settings.max_attempts
    retry_in = retry_delay(attempts, settings.retry_base)
    detail = {"error": error, "attempt": attempts, "where": _where(exc)}
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
        log.warning("phase.failed", attempt=attempts, error=error, retry_in_s=detail["retry_in_s"])
        return Step(Outcome.RETRY_SCHEDULED, get_run(conn, run.run_id), error, run.phase)
    failed = update_phase(
        conn, run, Phase.FAILED, actor=actor, detail={"error": error, "attempts": attempts}
    )
    log.error("run.failed", attempt=attempts, error=error)
    return Step(Outcome.FAILED, failed, error, run.phase)


def _describe(exc: BaseException) -> str:
    """One line for last_error: the driver's own error rather than SQLAlchemy's wrapper,
    which would repeat the whole statement and its parameters."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:MAX_ERROR_CHARS]


def _where(exc: BaseException) -> str:
    """The innermost frame, so an operator knows where to look without a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
