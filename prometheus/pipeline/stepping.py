"""One step of one run: claim it, run its phase task, change its phase, in one transaction.

Single execution: the claim is the run's row lock (``FOR NO KEY UPDATE SKIP LOCKED``),
held for the whole phase transaction, so two processes never run one run's phase at once,
and the task's writes commit together with the phase change, so a phase is never applied
twice and a crash leaves neither. A killed process's lock dies with its session. (NO KEY:
a foreign-key check against the run, by a writer that only references it, never waits.)

The claim, the savepoint and the phase change go to the driver directly
(``prometheus.db.driver``): this is the reactor's hot path. The task gets the SQLAlchemy
connection, in the same transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine, TextClause
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from prometheus.config import Settings
from prometheus.db.driver import driver_connection, driver_sql
from prometheus.errors import PrometheusError
from prometheus.logs import get_logger
from prometheus.pipeline.attempts import (
    News,
    about,
    record_apart,
    record_failure,
    write_phase,
)
from prometheus.pipeline.context import TaskContext
from prometheus.pipeline.deadlines import WATCHDOG, Deadline, PhaseTimeout
from prometheus.pipeline.phases import NEXT, TERMINAL, WORKABLE, Phase
from prometheus.pipeline.registry import phase_tasks
from prometheus.pipeline.runs import Outcome, Run, Step

log = get_logger(__name__)

SAVEPOINT = b"SAVEPOINT phase_task"
RELEASE = b"RELEASE SAVEPOINT phase_task"
ROLLBACK_TO = b"ROLLBACK TO SAVEPOINT phase_task"
TERMINATE_GRACE_S = 2.0  # after the deadline, how long a cancelled task has to give up


class SwallowedDatabaseError(PrometheusError):
    """The task caught a database error and returned normally: its transaction is aborted,
    so nothing it did can commit, and the attempt failed."""


def claim_and_step(
    db: Engine,
    claim: TextClause,
    params: Mapping[str, Any],
    *,
    settings: Settings,
    actor: str,
    notify: bool,
) -> Step | None:
    """Claim a run with ``claim`` and take it one step; None if the claim found none."""
    claimed: Run | None = None
    try:
        with db.connect() as conn, conn.begin():
            with driver_connection(conn) as driver, driver.cursor(row_factory=dict_row) as cur:
                row = cur.execute(driver_sql(claim), params).fetchone()
            if row is None:
                return None
            claimed = Run.from_mapping(row)
            if claimed.phase in TERMINAL:
                return Step(Outcome.TERMINAL, claimed)
            if claimed.phase is Phase.WAITING_FOR_DATA:
                return Step(Outcome.WAITING, claimed)
            if not row["due"]:
                return Step(Outcome.BACKING_OFF, claimed)
            with about(claimed):
                step, news = _run_phase(
                    db,
                    conn,
                    claimed,
                    backend_pid=row["backend_pid"],
                    settings=settings,
                    actor=actor,
                    notify=notify,
                )
    except SQLAlchemyError as exc:
        if claimed is None or claimed.phase not in WORKABLE or _connection_lost(exc):
            raise  # nothing claimed, or an outage: not the task's failure to count
        # The step failed outside the task's savepoint (at commit, say, or because the
        # task ended the transaction itself): its transaction is gone, so count the
        # attempt in one of its own, or the run would be claimed again and again.
        return record_apart(db, claimed, exc, settings=settings, actor=actor)
    with about(claimed):
        news.tell()
    return step


def _run_phase(
    db: Engine,
    conn: Connection,
    run: Run,
    *,
    backend_pid: int,
    settings: Settings,
    actor: str,
    notify: bool,
) -> tuple[Step, News]:
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
    started = time.monotonic()
    log.debug("phase.started", attempt=attempt)
    with driver_connection(conn) as driver:
        # The savepoint lets a failure roll back the task's writes while this transaction
        # keeps the row lock to record the failed attempt: no other process can slip in
        # between and retry before the backoff is written.
        driver.execute(SAVEPOINT)
        try:
            late = _LatePhase(db, driver, run, backend_pid, settings=settings, actor=actor)
            with WATCHDOG.guard(settings.phase_timeout.total_seconds(), late.expire) as dl:
                try:
                    task(ctx)
                finally:
                    dl.check()
            _require_usable(driver)
        except Exception as exc:
            driver.execute(ROLLBACK_TO)
            return record_failure(conn, run, exc, settings=settings, actor=actor)
        driver.execute(RELEASE)
    duration_s = round(time.monotonic() - started, 6)
    after = write_phase(
        conn,
        run,
        NEXT[run.phase],
        actor=actor,
        detail={"duration_s": duration_s, "attempt": attempt},
        notify=notify or NEXT[run.phase] in TERMINAL,  # COMPLETED is always announced
    )
    news = News(
        logging.INFO, "phase.completed", {"duration_s": duration_s, "to_phase": str(after.phase)}
    )
    return Step(Outcome.ADVANCED, after, phase=run.phase), news


class _LatePhase:
    """What happens to a phase that outlives PROMETHEUS_PHASE_TIMEOUT.

    First its statement in progress is cancelled: a task waiting on the database then
    fails at once, and its attempt is rolled back and counted as usual. A task busy in
    Python cannot be stopped from outside its thread, so if it has not finished within
    TERMINATE_GRACE_S, its session is ended (the server rolls its transaction back and
    frees the run), and the timed-out attempt is counted from here, apart. The worker
    thread stays busy until the task returns, and then finds its connection gone.

    It acts while holding the deadline (the phase cannot leave its guard meanwhile), so
    the attempt is counted once: here, or by the phase itself if it finishes first (then
    past its deadline, it fails with PhaseTimeout), or, if its session could not be
    ended, by the phase when its task returns.
    """

    def __init__(
        self, db: Engine, driver: Any, run: Run, pid: int, *, settings: Settings, actor: str
    ) -> None:
        self._db = db
        self._driver = driver
        # The server's pid as the claim read it (pg_backend_pid()), not the connection's
        # startup key: behind PgBouncer that is the pooler's, and names no backend.
        self._pid = pid
        self._run = run
        self._settings = settings
        self._actor = actor

    def expire(self, deadline: Deadline) -> None:
        with deadline.unless_finished() as running:
            if not running:
                return
            self._driver.cancel_safe()
        if deadline.finished.wait(TERMINATE_GRACE_S):
            return
        with deadline.unless_finished() as running:
            if not running:
                return
            with about(self._run):
                log.error("phase.abandoned", timeout_s=deadline.timeout_s, pid=self._pid)
            record_apart(
                self._db,
                self._run,
                PhaseTimeout(f"phase timed out after {deadline.timeout_s:g}s"),
                settings=self._settings,
                actor=self._actor,
                holder=self._pid,
            )


def _require_usable(driver: psycopg.Connection[Any]) -> None:
    """Fail the attempt, with the error the task swallowed, if it left the transaction
    aborted: RELEASE would fail outside the savepoint and lose the run's lock, and the
    attempt would be recorded as "transaction is aborted" instead of what went wrong."""
    if driver.info.transaction_status is not TransactionStatus.INERROR:
        return
    # libpq keeps the last error's text until the next statement: the swallowed one, unless
    # the task sent more into the aborted transaction (then it says so).
    message = driver.pgconn.error_message.decode(errors="replace").strip()
    swallowed = message.removeprefix("ERROR:").strip().splitlines()[0] if message else "unknown"
    raise SwallowedDatabaseError(
        f"the task caught a database error and carried on in the aborted transaction: {swallowed}"
    )


def _connection_lost(exc: SQLAlchemyError) -> bool:
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
