"""Phase tasks that report when they run, for ``bench latency`` (reactor in-process).

``signals`` records the moment the first task of a run starts; ``books`` sends a
notification that PostgreSQL delivers only when the COMPLETED transition commits.
"""

from __future__ import annotations

import threading
import time

from prometheus.db.queries import query
from prometheus.pipeline.context import TaskContext

COMPLETED_CHANNEL = "prometheus_bench"

_lock = threading.Lock()
_started: dict[int, float] = {}
_arrived = threading.Condition(_lock)


def signals(ctx: TaskContext) -> None:
    now = time.perf_counter()
    with _lock:
        _started.setdefault(ctx.run_id, now)
        _arrived.notify_all()


def universes(ctx: TaskContext) -> None:
    """Nothing."""


def books(ctx: TaskContext) -> None:
    ctx.conn.execute(query("bench_completed_signal"), {"run_id": ctx.run_id})


def wait_for_start(run_id: int, timeout: float) -> float:
    """perf_counter() at which the run's first task started."""
    with _lock:
        if not _arrived.wait_for(lambda: run_id in _started, timeout):
            raise TimeoutError(f"run {run_id}: no task started within {timeout}s")
        return _started[run_id]
