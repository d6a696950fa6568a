"""Steps of runs: claim a run, run its phase task, change its phase, in one transaction;
under a backlog, several runs' steps in one transaction (a batch).

Single execution: the claim is the run's row lock (``FOR NO KEY UPDATE SKIP LOCKED``),
held for the whole transaction, so two processes never run one run's phase at once, and
the task's writes commit together with the phase change, so a phase is never applied
twice and a crash leaves neither. A killed process's lock dies with its session. (NO KEY:
a foreign-key check against the run, by a writer that only references it, never waits.)

A batch changes none of that, it only shares the transaction. Each run's task runs in a
savepoint of its own: a failure rolls back that run's writes alone and is recorded as its
attempt, and the others go on. One commit then makes every run's step true at once, and
a crash before it leaves every run where it was, to be done again (once). A batch grows
only while other runs are due and no idle worker has taken them (its next claim finds
one), and stops growing at ``BatchLimits``: with no backlog it is one run, as ever, and
with slow tasks it is one run too (the time bound is reached by the first).

Deferred constraints do not wait for the commit: inside a task's savepoint every
deferrable constraint is deferred (``SET CONSTRAINTS ALL DEFERRED``, whatever the
task's place in a batch) and checked when the task has returned, before the savepoint is
released (``SET CONSTRAINTS ALL IMMEDIATE``). A violation is then the task's failed
attempt like any other, rolled back to the savepoint and counted under the row lock;
outside tasks the transaction's constraints are immediate, so nothing of ours is pending
when a task starts and a check can only fail on what that task wrote.

The claim, the savepoints and the phase change go to the driver directly
(``prometheus.db.driver``), pipelined: the finished run's constraint check, RELEASE and
phase change, the next claim and its SAVEPOINT travel in one round trip. Nothing relies on a named
prepared statement, so this works through a transaction pooler. The task gets the
SQLAlchemy connection, in the same transaction.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine, TextClause
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from prometheus.config import Settings
from prometheus.db.driver import driver_connection, driver_sql
from prometheus.db.queries import query
from prometheus.db.sqlstate import mapped_errors
from prometheus.errors import IllegalTransition, PrometheusError
from prometheus.logs import get_logger
from prometheus.pipeline.attempts import (
    News,
    about,
    phase_change_params,
    record_apart,
    record_failure,
)
from prometheus.pipeline.context import TaskContext
from prometheus.pipeline.deadlines import WATCHDOG, Deadline, PhaseTimeout
from prometheus.pipeline.phases import NEXT, TERMINAL, Phase
from prometheus.pipeline.registry import phase_tasks
from prometheus.pipeline.runs import Outcome, Run, Step

log = get_logger(__name__)

SAVEPOINT = b"SAVEPOINT phase_task"
RELEASE = b"RELEASE SAVEPOINT phase_task"
ROLLBACK_TO = b"ROLLBACK TO SAVEPOINT phase_task"
DEFER_CONSTRAINTS = b"SET CONSTRAINTS ALL DEFERRED"  # a task's, to its end
CHECK_CONSTRAINTS = b"SET CONSTRAINTS ALL IMMEDIATE"  # what is deferred is checked now
TERMINATE_GRACE_S = 2.0  # after the deadline, how long a cancelled task has to give up


class SwallowedDatabaseError(PrometheusError):
    """The task caught a database error and returned normally: its transaction is aborted,
    so nothing it did can commit, and the attempt failed."""


@dataclass(frozen=True)
class BatchLimits:
    """How far one transaction may grow: it claims no further run once it has stepped
    ``max_runs``, or once ``max_seconds`` have passed since it began. The first run is
    always taken; ``ONE_RUN`` is a transaction per step."""

    max_runs: int
    max_seconds: float

    def room(self, stepped: int, began: float) -> bool:
        return stepped < self.max_runs and time.monotonic() - began < self.max_seconds


ONE_RUN = BatchLimits(max_runs=1, max_seconds=0.0)


def step_runs(
    db: Engine,
    *,
    runs: Iterable[int] = (),
    take_due: bool,
    limits: BatchLimits,
    settings: Settings,
    actor: str,
    notify: bool,
    on_task: Callable[[Run], None] = lambda run: None,
    on_abandoned: Callable[[Step], None] = lambda step: None,
) -> list[Step]:
    """Steps in one transaction: of ``runs`` (by id, claimed together; a run held, or
    locked by another process, is passed over) and then, with ``take_due``, of the due
    runs nobody holds, oldest first; within ``limits``. Returns the steps once committed,
    their log lines told. ``on_task`` is called as each run's task starts.

    ``on_abandoned`` gets the step of a phase abandoned past its timeout (its session
    ended, its failed attempt counted apart), from the watchdog's thread, as soon as it
    is counted: the worker that ran it may never return to report it, and when it does
    it finds only its connection gone.

    A failure outside a task's savepoint is counted as that run's failed attempt in a
    transaction of its own when one run was stepped; when several were, it cannot be told
    whose it was, so each is stepped again alone, and the culprit's failure is counted in
    its own transaction, the others' work is done (once) there. What can still fail there
    is not the task's writes (their deferred constraints are checked inside its savepoint)
    but our own phase change or the COMMIT (a trigger someone added to our tables, a
    NOTIFY the server refuses), or a task that ended the transaction itself. Such a
    failure frees the run's lock before its write-up takes it again: in between, another
    worker may claim the run and run the phase again, uncounted. A lost connection is
    not counted at all, on purpose: an outage is nobody's attempt, and the phase, rolled
    back with its connection, is simply done again.
    """
    batch = _Batch(
        db,
        settings=settings,
        actor=actor,
        notify=notify,
        on_task=on_task,
        on_abandoned=on_abandoned,
    )
    try:
        batch.run(list(runs), take_due=take_due, limits=limits)
    except SQLAlchemyError as exc:
        worked = batch.worked
        if not worked or _connection_lost(exc):
            raise  # nothing done that could be counted, or an outage: not a task's failure
        if len(worked) == 1:
            # The step failed outside the task's savepoint (its phase change or the COMMIT
            # refused, or the task ended the transaction itself): its transaction is gone,
            # so count the attempt in one of its own, or the run would be claimed again and
            # again.
            return [record_apart(db, worked[0], exc, settings=settings, actor=actor)]
        log.warning("batch.failed", runs=[run.run_id for run in worked], error=str(exc)[:200])
        return [
            step
            for run in worked
            for step in step_runs(
                db,
                runs=[run.run_id],
                take_due=False,
                limits=ONE_RUN,
                settings=settings,
                actor=actor,
                notify=notify,
                on_task=on_task,
                on_abandoned=on_abandoned,
            )
        ]
    for run, news in batch.news:
        with about(run):
            news.tell()
    return batch.steps


@dataclass
class _Finish:
    """A run whose task succeeded: its phase change, sent with the next round trip."""

    run: Run
    to_phase: Phase
    detail: dict[str, Any]
    started: float
    cursor: psycopg.Cursor[dict[str, Any]] | None = None


@dataclass
class _Batch:
    """One transaction's worth of steps: what was stepped, and what to tell after commit."""

    db: Engine
    settings: Settings
    actor: str
    notify: bool
    on_task: Callable[[Run], None]
    on_abandoned: Callable[[Step], None]
    steps: list[Step] = field(default_factory=list)
    news: list[tuple[Run, News]] = field(default_factory=list)
    worked: list[Run] = field(default_factory=list)  # runs whose task ran, as claimed
    _savepoint: bool = False  # one is open (released with the next round trip)
    _finish: _Finish | None = None

    def run(self, runs: list[int], *, take_due: bool, limits: BatchLimits) -> None:
        """Claim and step until nothing is left to claim or ``limits`` say stop.

        ``runs`` are claimed together, first. Due runs are claimed next: one, when the
        transaction has stepped nothing yet (with no backlog, a run per transaction, the
        lowest latency); later, as many as the limits leave room for, in one statement,
        since a due run that no idle worker has taken by then means a backlog. Claimed
        runs the time limit leaves unstepped are freed by the commit."""
        began = time.monotonic()
        claimed: deque[Any] = deque()
        taken: list[int] = []
        with self.db.connect() as conn, conn.begin():
            while not taken or limits.room(len(taken), began):
                if claimed:
                    self._prepare(conn, None)
                elif runs:
                    claim = (query("claim_runs"), {"run_ids": runs})
                    claimed.extend(self._prepare(conn, claim))
                    runs = []
                    if not claimed:
                        continue  # held, or another process's: passed over
                elif take_due:
                    limit = limits.max_runs - len(taken) if taken else 1
                    params = {"taken": taken, "limit": limit}
                    claimed.extend(self._prepare(conn, (query("claim_due_runs"), params)))
                    if not claimed:
                        break
                else:
                    break
                row = claimed.popleft()
                run = Run.from_mapping(row)
                taken.append(run.run_id)
                self._step(conn, run, due=row["due"], backend_pid=row["backend_pid"])
            self._flush(conn)

    def _step(self, conn: Connection, run: Run, *, due: bool, backend_pid: int) -> None:
        if run.phase in TERMINAL:
            self.steps.append(Step(Outcome.TERMINAL, run))
        elif run.phase is Phase.WAITING_FOR_DATA:
            self.steps.append(Step(Outcome.WAITING, run))
        elif not due:
            self.steps.append(Step(Outcome.BACKING_OFF, run))
        else:
            self.worked.append(run)
            with about(run):
                self._run_phase(conn, run, backend_pid)

    def _run_phase(self, conn: Connection, run: Run, backend_pid: int) -> None:
        task = phase_tasks(self.settings.phase_tasks)[run.phase]
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
        self.on_task(run)
        log.debug("phase.started", attempt=attempt)
        with driver_connection(conn) as driver:
            # The savepoint (opened with the claim) lets a failure roll back the task's
            # writes while this transaction keeps the row lock to record the failed
            # attempt: no other process can slip in and retry before the backoff is written.
            try:
                late = _LatePhase(
                    self.db,
                    driver,
                    run,
                    backend_pid,
                    settings=self.settings,
                    actor=self.actor,
                    on_abandoned=self.on_abandoned,
                )
                with WATCHDOG.guard(self.settings.phase_timeout.total_seconds(), late.expire) as dl:
                    try:
                        task(ctx)
                    finally:
                        dl.check()
                _require_usable(driver)
            except Exception as exc:
                driver.execute(ROLLBACK_TO)
                step, news = record_failure(
                    conn, run, exc, settings=self.settings, actor=self.actor
                )
                self.steps.append(replace(step, took_s=time.monotonic() - started))
                self.news.append((run, news))
                return
        duration_s = round(time.monotonic() - started, 6)
        self._finish = _Finish(
            run, NEXT[run.phase], {"duration_s": duration_s, "attempt": attempt}, started
        )

    def _prepare(
        self, conn: Connection, claim: tuple[TextClause, Mapping[str, Any]] | None
    ) -> list[Any]:
        """One round trip before the next task: the finished run's constraint check,
        RELEASE and phase change, the claim if one is given, and the next task's
        SAVEPOINT. Returns the rows the claim took (mappings, in order)."""
        with mapped_errors(), driver_connection(conn) as driver:
            finish = self._finish
            try:
                with driver.pipeline():
                    self._send_finish(driver)
                    cursor = None
                    if claim is not None:
                        cursor = driver.cursor(row_factory=dict_row)
                        cursor.execute(driver_sql(claim[0]), claim[1])
                    driver.execute(SAVEPOINT)
                    driver.execute(DEFER_CONSTRAINTS)
            except psycopg.Error as exc:
                self._count_constraint_failure(conn, driver, finish, exc)
                return self._prepare(conn, claim)  # the finished run is counted now
            self._savepoint = True
            self._receive_finish(finish)
            return cursor.fetchall() if cursor is not None else []

    def _flush(self, conn: Connection) -> None:
        """Before the commit: the last run's constraint check, RELEASE and phase change."""
        finish = self._finish
        if finish is None:
            return  # an open savepoint is released by the commit
        with mapped_errors(), driver_connection(conn) as driver:
            try:
                with driver.pipeline():
                    self._send_finish(driver)
            except psycopg.Error as exc:
                self._count_constraint_failure(conn, driver, finish, exc)
                return  # the commit releases the savepoint, the failure recorded in it
            self._receive_finish(finish)

    def _send_finish(self, driver: psycopg.Connection[Any]) -> None:
        # First in every round trip: inside the savepoint, the task's deferred constraints;
        # at the start of the transaction, outside any, it makes ours immediate.
        driver.execute(CHECK_CONSTRAINTS)
        if self._savepoint:
            driver.execute(RELEASE)
            self._savepoint = False
        finish, self._finish = self._finish, None
        if finish is not None:
            notify = self.notify or finish.to_phase in TERMINAL  # COMPLETED is always announced
            params = phase_change_params(
                finish.run, finish.to_phase, actor=self.actor, detail=finish.detail, notify=notify
            )
            finish.cursor = driver.cursor(row_factory=dict_row)
            finish.cursor.execute(driver_sql(query("update_phase")), params)

    def _count_constraint_failure(
        self,
        conn: Connection,
        driver: psycopg.Connection[Any],
        finish: _Finish | None,
        exc: psycopg.Error,
    ) -> None:
        """A round trip failed. If the finished task's savepoint is still there (so the
        failure came before its RELEASE: its deferred constraints' check), the failure
        is that task's attempt: roll back to the savepoint and count it there, under the
        run's lock. Otherwise re-raise: it is not a task's (``step_runs`` handles it)."""
        if finish is None:
            raise exc
        try:
            driver.execute(ROLLBACK_TO)
        except psycopg.Error:
            raise exc from None  # past the savepoint, or the connection is gone
        self._savepoint = True  # rolled back to: still open, the failure is recorded in it
        run = finish.run
        with about(run):
            step, news = record_failure(conn, run, exc, settings=self.settings, actor=self.actor)
        self.steps.append(replace(step, took_s=time.monotonic() - finish.started))
        self.news.append((run, news))

    def _receive_finish(self, finish: _Finish | None) -> None:
        if finish is None:
            return
        assert finish.cursor is not None
        row = finish.cursor.fetchone()
        run = finish.run
        if row is None:
            raise IllegalTransition(
                f"run {run.run_id} is no longer in {run.phase}; it changed meanwhile, "
                "nothing written"
            )
        after = Run.from_mapping(row)
        took = time.monotonic() - finish.started
        self.steps.append(Step(Outcome.ADVANCED, after, phase=run.phase, took_s=took))
        fields = {"duration_s": finish.detail["duration_s"], "to_phase": str(after.phase)}
        self.news.append((run, News(logging.INFO, "phase.completed", fields)))


class _LatePhase:
    """What happens to a phase that outlives PROMETHEUS_PHASE_TIMEOUT.

    First its statement in progress is cancelled: a task waiting on the database then
    fails at once, and its attempt is rolled back and counted as usual. A task busy in
    Python cannot be stopped from outside its thread, so if it has not finished within
    TERMINATE_GRACE_S, its session is ended (the server rolls its transaction back and
    frees the run, and the other runs of its batch, whose steps are then done again), and
    the timed-out attempt is counted from here, apart. The worker thread stays busy until
    the task returns, and then finds its connection gone.

    It acts while holding the deadline (the phase cannot leave its guard meanwhile), so
    the attempt is counted once: here, or by the phase itself if it finishes first (then
    past its deadline, it fails with PhaseTimeout), or, if its session could not be
    ended, by the phase when its task returns. An attempt counted here is handed to
    ``on_abandoned`` at once, like any failed attempt's step (failure metrics, a wake
    when its backoff ends): its worker can report nothing but a lost connection.
    """

    def __init__(
        self,
        db: Engine,
        driver: Any,
        run: Run,
        pid: int,
        *,
        settings: Settings,
        actor: str,
        on_abandoned: Callable[[Step], None],
    ) -> None:
        self._db = db
        self._driver = driver
        # The server's pid as the claim read it (pg_backend_pid()), not the connection's
        # startup key: behind PgBouncer that is the pooler's, and names no backend.
        self._pid = pid
        self._run = run
        self._settings = settings
        self._actor = actor
        self._on_abandoned = on_abandoned

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
            step = record_apart(
                self._db,
                self._run,
                PhaseTimeout(f"phase timed out after {deadline.timeout_s:g}s"),
                settings=self._settings,
                actor=self._actor,
                holder=self._pid,
            )
        if step.attempt_failed:
            self._on_abandoned(step)


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
