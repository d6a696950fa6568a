"""Phase tasks that do nothing but wait: ``signals`` for the advisory lock
``HELD_SIGNALS`` and ``universes`` for ``HELD_UNIVERSES``, which a test may hold. A run
then sits in DATA_READY (announced by its readiness) and in SIGNALS_DONE, a phase a
reactor reaches while stepping its own run and announces to nobody."""

from __future__ import annotations

from sqlalchemy import text

from prometheus.pipeline.context import TaskContext

HELD_SIGNALS = 7_424_313
HELD_UNIVERSES = 7_424_314
_WAIT = text("SELECT pg_advisory_xact_lock(:key)")


def signals(ctx: TaskContext) -> None:
    ctx.conn.execute(_WAIT, {"key": HELD_SIGNALS})


def universes(ctx: TaskContext) -> None:
    ctx.conn.execute(_WAIT, {"key": HELD_UNIVERSES})


def books(ctx: TaskContext) -> None:
    """Nothing to write."""
