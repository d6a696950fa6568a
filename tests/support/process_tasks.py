"""Phase tasks for reactor subprocesses: ``PROMETHEUS_PHASE_TASKS=tests.support.process_tasks``.

The registry imports one module per process, so what a task does is chosen by the run's
region, which the test sets, not by global state:

- ``BLOCKING_REGION``: ``signals`` writes a marker row into ``process_markers`` (in the
  phase's transaction), then waits for a shared hold on the advisory lock
  ``BLOCKING_LOCK``, which the test holds exclusively (``held_lock``). While it waits, the
  phase is visibly in progress: its backend is a waiter in ``pg_locks``
  (``lock_waiters``), and its marker is written but not committed;
- ``BATCH_REGION``: ``signals`` writes a marker row and takes a shared transaction lock
  on the advisory key (``MARK_CLASS``, run_id), which shows in ``pg_locks`` which runs'
  phases an open transaction has done (``batch_marks``); the ``BATCH_BLOCKS_AT``-th run of
  one transaction then waits for ``BLOCKING_LOCK`` as above: a batch, seen mid-way;
- any other region: every task is a no-op.

The helpers below are what the tests use to set that up and to look at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from prometheus.pipeline.context import TaskContext

MODULE = __name__
BLOCKING_REGION = "BLOCKS"
BLOCKING_LOCK = 5_150_001  # below 2**31: pg_locks shows it as objid, classid 0
BATCH_REGION = "BATCHES"
BATCH_BLOCKS_AT = 3
MARK_CLASS = 5_150_002  # two-int advisory keys (MARK_CLASS, run_id): classid, objid

_MARK = text(
    "INSERT INTO process_markers (run_id, phase, application_name)"
    " VALUES (:run_id, :phase, current_setting('application_name'))"
)
_WAIT = text("SELECT pg_advisory_xact_lock_shared(:key)")


def signals(ctx: TaskContext) -> None:
    if ctx.region not in (BLOCKING_REGION, BATCH_REGION):
        return
    ctx.conn.execute(_MARK, {"run_id": ctx.run_id, "phase": ctx.phase})
    if ctx.region == BATCH_REGION:
        ctx.conn.execute(
            text("SELECT pg_advisory_xact_lock_shared(:cls, CAST(:run_id AS integer))"),
            {"cls": MARK_CLASS, "run_id": ctx.run_id},
        )
        in_this_transaction = ctx.conn.execute(
            text("SELECT count(*) FROM process_markers WHERE txid = pg_current_xact_id()")
        ).scalar_one()
        if in_this_transaction < BATCH_BLOCKS_AT:
            return
    ctx.conn.execute(_WAIT, {"key": BLOCKING_LOCK})


def universes(ctx: TaskContext) -> None:
    """No-op."""


def books(ctx: TaskContext) -> None:
    """No-op."""


def create_marker_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE process_markers ("
                " run_id bigint NOT NULL, phase text NOT NULL, application_name text NOT NULL,"
                " written_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " txid xid8 NOT NULL DEFAULT pg_current_xact_id())"
            )
        )


def markers(engine: Engine, run_id: int) -> list[tuple[str, str]]:
    """Committed markers of the run: (phase, application_name of the writer)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT phase, application_name FROM process_markers"
                " WHERE run_id = :run_id ORDER BY written_at"
            ),
            {"run_id": run_id},
        )
        return [(row.phase, row.application_name) for row in rows]


@contextmanager
def held_lock(engine: Engine) -> Iterator[Connection]:
    """Hold ``BLOCKING_LOCK`` exclusively on a connection of our own until the block ends."""
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": BLOCKING_LOCK})
        conn.commit()  # a session lock: it outlives the transaction, not the block
        try:
            yield conn
        finally:
            conn.execute(text("SELECT pg_advisory_unlock_all()"))
            conn.commit()


def lock_waiters(engine: Engine) -> list[str]:
    """application_name of every backend of this database waiting for ``BLOCKING_LOCK``."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.application_name FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND NOT l.granted"
                " AND d.datname = current_database()"
                " AND l.classid = 0 AND l.objid = CAST(:key AS oid)"
                " ORDER BY a.application_name"
            ),
            {"key": BLOCKING_LOCK},
        )
        return list(rows.scalars())


def batch_marks(engine: Engine, application_name: str) -> list[int]:
    """The runs whose phase the open transaction of that backend has done (their marks)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT l.objid FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :cls"
                " AND d.datname = current_database() AND a.application_name = :name"
                " ORDER BY l.objid"
            ),
            {"cls": MARK_CLASS, "name": application_name},
        )
        return [int(v) for v in rows.scalars()]
