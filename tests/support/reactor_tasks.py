"""Phase tasks for in-process reactor tests (``Settings(phase_tasks=MODULE)``).

Each task is a no-op unless the test database's ``test_task_plan`` table says otherwise
for its (run, phase): fail the first ``failures`` attempts, or first wait for an advisory
lock the test holds. The plan is data in the database, not state in this process, so
the behaviour does not depend on which thread, or which reactor, runs the task, and a
failed attempt's savepoint rollback cannot undo it (the attempt number comes from the
run's row).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from prometheus.pipeline.context import TaskContext

MODULE = __name__

_CREATE = text(
    """
    CREATE TABLE IF NOT EXISTS test_task_plan (
        run_id   bigint  NOT NULL,
        phase    text    NOT NULL,
        failures integer NOT NULL DEFAULT 0,
        lock_key bigint,
        PRIMARY KEY (run_id, phase)
    )
    """
)

_PLANNED = text("SELECT to_regclass('test_task_plan') IS NOT NULL")
_PLAN = text(
    "SELECT failures, lock_key FROM test_task_plan WHERE run_id = :run_id AND phase = :phase"
)


class PlannedFailure(RuntimeError):
    """The failure a plan asked for."""


def plan(
    db: Engine | Connection,
    run_id: int,
    phase: str,
    *,
    failures: int = 0,
    lock_key: int | None = None,
) -> None:
    """Make the task of ``phase`` fail ``failures`` times for ``run_id``, and/or wait for
    the advisory lock ``lock_key`` first (the test holds it to keep the task in place)."""
    statement = text(
        """
        INSERT INTO test_task_plan (run_id, phase, failures, lock_key)
        VALUES (:run_id, :phase, :failures, :lock_key)
        ON CONFLICT (run_id, phase) DO UPDATE
        SET failures = excluded.failures, lock_key = excluded.lock_key
        """
    )
    params = {"run_id": run_id, "phase": phase, "failures": failures, "lock_key": lock_key}
    if isinstance(db, Connection):
        db.execute(_CREATE)
        db.execute(statement, params)
        return
    with db.begin() as conn:
        conn.execute(_CREATE)
        conn.execute(statement, params)


def _follow_plan(ctx: TaskContext) -> None:
    if not ctx.conn.execute(_PLANNED).scalar_one():
        return
    row = ctx.conn.execute(_PLAN, {"run_id": ctx.run_id, "phase": ctx.phase}).one_or_none()
    if row is None:
        return
    if row.lock_key is not None:
        ctx.conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": row.lock_key})
    if ctx.attempt <= row.failures:
        raise PlannedFailure(f"planned failure {ctx.attempt} of {row.failures} in {ctx.phase}")


def signals(ctx: TaskContext) -> None:
    _follow_plan(ctx)


def universes(ctx: TaskContext) -> None:
    _follow_plan(ctx)


def books(ctx: TaskContext) -> None:
    _follow_plan(ctx)
