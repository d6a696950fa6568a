"""A plug-in phase-task module for tests: ``PROMETHEUS_PHASE_TASKS=tests.support.task_modules``.

The registry caches per module name, so one module serves every test, and what it does is
chosen by data in the database, the run's region, rather than by global state:

- ``RAISES``: writes a partial row, then raises (every attempt);
- ``FLAKY``: like RAISES on the first attempt, then does the normal work;
- ``SLEEPS``: writes a partial row, then blocks in ``pg_sleep(30)`` (phase timeout tests);
- ``BLOCKS``: waits for the advisory lock ``BLOCKING_LOCK`` (which the test holds), then
  does the normal work, so a test can keep a phase running as long as it needs;
- ``SLOWFAILS``: busy in Python for ``SLOW_SECONDS``, then raises (backoff from the failure);
- ``HANGS``: busy in Python for ``HANG_SECONDS`` (past a short phase timeout), outside any
  statement, so only ending its session can free the run;
- ``BREAKS_DEFERRED``: takes the advisory lock ``BLOCKING_LOCK`` (free unless a test
  holds it), then writes a row that breaks a deferred constraint: the violation shows
  only when the constraint is checked, after the task has returned;
- ``DEFERS``: writes a row that breaks a deferred constraint, then the row that mends it:
  fine wherever the constraint is checked after the task's last statement;
- ``NUL``: raises an error whose text holds a NUL byte (which PostgreSQL text cannot);
- ``WEDGES``: blocks in Python, outside any statement, until the test sets
  ``WEDGE_RELEASE`` (the ``wedge_release`` fixture does at teardown), then does the
  normal work; ``WEDGE_ENTERED`` says one has started;
- ``WEDGES_ONCE``: like WEDGES on the first attempt, then does the normal work;
- ``SWALLOWS``: writes a partial row, then catches the error of a failing statement and
  returns normally, leaving its transaction aborted;
- any other region: the normal work, fixed signal scores for ``PLUGIN_INSTRUMENTS``.

Only ``signals`` is defined: ``universes`` and ``books`` fall back to the reference tasks,
which is the PROMETHEUS_PHASE_TASKS contract for a missing callable.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from prometheus.pipeline.context import TaskContext

BLOCKING_LOCK = 7_424_242
SLOW_SECONDS = 1.5
HANG_SECONDS = 6.0
#: instrument -> assessment score; liquid enough for the reference universe.
PLUGIN_INSTRUMENTS = {"PLUG_A": 0.9, "PLUG_B": 0.6, "PLUG_C": 0.3}
PARTIAL_INSTRUMENT = "PARTIAL"
WEDGE_ENTERED = threading.Event()
WEDGE_RELEASE = threading.Event()
WEDGE_MAX_SECONDS = 120.0  # a safety net: never hold a worker past a test's own timeout

_INSERT_SCORE = text(
    "INSERT INTO signal_scores"
    " (run_id, instrument_id, trailing_return, volatility, liquidity, stability, assessment)"
    " VALUES (:run_id, :instrument_id, 0.01, 0.02, 5e6, 0.5, :assessment)"
)


_DEFERRED_FK = (  # IF NOT EXISTS: several tasks of a batch share the transaction
    "CREATE TEMP TABLE IF NOT EXISTS parent (id bigint PRIMARY KEY) ON COMMIT DROP",
    "CREATE TEMP TABLE IF NOT EXISTS child"
    " (parent_id bigint REFERENCES parent DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP",
)


class TaskFailure(RuntimeError):
    """What the RAISES and FLAKY tasks raise."""


def signals(ctx: TaskContext) -> None:
    if ctx.region == "SLOWFAILS":
        time.sleep(SLOW_SECONDS)
        raise TaskFailure("failed after a while")
    if ctx.region == "HANGS":
        time.sleep(HANG_SECONDS)
    if ctx.region == "NUL":
        raise TaskFailure("bad\x00byte")
    if ctx.region in ("BREAKS_DEFERRED", "DEFERS"):
        if ctx.region == "BREAKS_DEFERRED":
            ctx.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BLOCKING_LOCK})
        for statement in _DEFERRED_FK:
            ctx.conn.execute(text(statement))
        ctx.conn.execute(text("INSERT INTO child VALUES (:id)"), {"id": ctx.run_id})
        if ctx.region == "DEFERS":
            ctx.conn.execute(text("INSERT INTO parent VALUES (:id)"), {"id": ctx.run_id})
    if ctx.region == "WEDGES" or (ctx.region == "WEDGES_ONCE" and ctx.attempt == 1):
        WEDGE_ENTERED.set()
        WEDGE_RELEASE.wait(WEDGE_MAX_SECONDS)
    if ctx.region == "SWALLOWS":
        _write(ctx, {PARTIAL_INSTRUMENT: 1.0})
        try:
            ctx.conn.execute(text("SELECT 1 / 0"))
        except SQLAlchemyError:
            ctx.log.info("swallowed")  # the mistake under test: carry on as if nothing failed
        return
    if ctx.region in ("RAISES", "SLEEPS") or (ctx.region == "FLAKY" and ctx.attempt == 1):
        _write(ctx, {PARTIAL_INSTRUMENT: 1.0})
        if ctx.region == "SLEEPS":
            ctx.conn.execute(text("SELECT pg_sleep(30)"))
        raise TaskFailure(f"signals failed on attempt {ctx.attempt}")
    if ctx.region == "BLOCKS":
        ctx.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BLOCKING_LOCK})
    _write(ctx, PLUGIN_INSTRUMENTS)


def _write(ctx: TaskContext, scores: dict[str, float]) -> None:
    ctx.conn.execute(
        _INSERT_SCORE,
        [{"run_id": ctx.run_id, "instrument_id": k, "assessment": v} for k, v in scores.items()],
    )
