"""The backstop: find runs with work due and feed them to the dispatcher.

NOTIFY is not durable, so the sweep service runs a sweep at start-up and after every
reconnect (for what was notified while nobody listened), every interval (for anything
else missed), and when the earliest backoff ends (so a retry waits its backoff, not a
whole interval). While the listener cannot hear, the poll service looks for due runs
every poll interval (a second by default) instead. Both compare against the database's
clock only; they never decide anything a run's row decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine

from prometheus.logs import get_logger
from prometheus.orchestration.dispatcher import Dispatcher
from prometheus.orchestration.metrics import ReactorMetrics
from prometheus.pipeline.state import count_due_runs, seconds_until_next_retry

log = get_logger(__name__)

EARLIEST_RESWEEP_S = 0.05  # a backoff ending now: sweep right after it, not in a busy loop


def sweep(engine: Engine, *, dispatcher: Dispatcher, metrics: ReactorMetrics) -> float | None:
    """Wake the workers if any run is due; return seconds until the earliest backoff
    ends (the sweep service's next round), None if no run is backing off."""
    started = time.monotonic()
    due = count_due_runs(engine)
    retry_in = seconds_until_next_retry(engine)
    if due:
        dispatcher.wake_all()
    metrics.sweeps.inc()
    metrics.swept_runs.inc(due)
    log.info("sweep.completed", due=due, duration_ms=round((time.monotonic() - started) * 1000, 3))
    return max(retry_in, EARLIEST_RESWEEP_S) if retry_in is not None else None


def poll(
    engine: Engine,
    *,
    dispatcher: Dispatcher,
    metrics: ReactorMetrics,
    needed: Callable[[], bool],
) -> None:
    """The poll service's step: while the listener cannot hear (``needed()``: not
    connected, or not proven to receive), wake the workers whenever a run is due, so no
    run waits for the sweep's interval. A listener that hears makes this a no-op."""
    if not needed():
        return
    metrics.polls.inc()
    if count_due_runs(engine):
        dispatcher.wake_all()
