"""N worker threads that advance runs; at most one in flight per run in this process.

A notification for a run already queued is coalesced; one for a run being advanced
marks it for one more look when the current advance ends (the change may be an
override the worker has not seen). Across processes, the row lock in ``advance_run``
is what keeps work single: a run locked elsewhere comes back BUSY and is dropped here,
because its holder keeps stepping it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from datetime import date

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from prometheus.config import Settings
from prometheus.logs import get_logger
from prometheus.orchestration.metrics import ReactorMetrics
from prometheus.pipeline.state import Outcome, Step, advance_run, find_run

log = get_logger(__name__)


@dataclass(frozen=True)
class RunKey:
    """A run named by its date and region (what ingestion notifications carry)."""

    as_of_date: date
    region: str


WorkItem = int | RunKey
_STOP = object()


class Dispatcher:
    def __init__(
        self, engine: Engine, settings: Settings, *, actor: str, metrics: ReactorMetrics
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._actor = actor
        self._metrics = metrics
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued: dict[WorkItem, float | None] = {}  # item -> first notification time
        self._running: set[int] = set()
        self._look_again: set[int] = set()
        self._accepting = True
        self._threads = [
            threading.Thread(target=self._work, name=f"dispatcher-{i}", daemon=True)
            for i in range(settings.concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def in_progress(self) -> int:
        with self._lock:
            return len(self._running)

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def submit(self, item: WorkItem, *, notified_at: float | None = None) -> None:
        """Queue a run for advancing, unless it is queued or running already."""
        with self._lock:
            if not self._accepting:
                return
            if isinstance(item, int) and item in self._running:
                self._look_again.add(item)
                return
            if item in self._queued:
                return
            self._queued[item] = notified_at
        self._queue.put(item)

    def stop(self, timeout: float) -> bool:
        """Take no more work, let running advances finish; True if they did in time."""
        with self._lock:
            self._accepting = False
            self._queued.clear()
            self._look_again.clear()
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _work(self) -> None:
        structlog.contextvars.bind_contextvars(reactor_id=self._actor)
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, int | RunKey)
            with self._lock:
                if item not in self._queued:  # dropped by stop()
                    continue
                notified_at = self._queued.pop(item)
            run_id = self._resolve(item)
            if run_id is None or not self._claim(run_id):
                continue
            try:
                if notified_at is not None:
                    self._metrics.notification_to_start.observe(time.monotonic() - notified_at)
                self._advance(run_id)
            finally:
                self._release(run_id)

    def _resolve(self, item: WorkItem) -> int | None:
        if isinstance(item, int):
            return item
        try:
            run = find_run(self._engine, item.as_of_date, item.region)
        except SQLAlchemyError as exc:
            log.warning(
                "dispatch.failed",
                error=_short(exc),
                as_of_date=str(item.as_of_date),
                region=item.region,
            )
            return None
        return run.run_id if run else None

    def _claim(self, run_id: int) -> bool:
        with self._lock:
            if run_id in self._running:
                self._look_again.add(run_id)
                return False
            self._running.add(run_id)
            self._metrics.in_progress.set(len(self._running))
            return True

    def _release(self, run_id: int) -> None:
        with self._lock:
            self._running.discard(run_id)
            self._metrics.in_progress.set(len(self._running))
            again = run_id in self._look_again and self._accepting
            self._look_again.discard(run_id)
        if again:
            self.submit(run_id)

    def _advance(self, run_id: int) -> None:
        """Step the run until it waits, finishes, fails or is someone else's; after a stop
        request, finish the phase in hand but start no other."""
        while True:
            step = self._step(run_id)
            if step is None or not step.should_continue or not self._accepting:
                return

    def _step(self, run_id: int) -> Step | None:
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                step = advance_run(
                    self._engine, run_id, settings=self._settings, actor=self._actor, notify=False
                )
                break
            except DBAPIError as exc:
                # A pooled connection killed under us (server restart): the pool has been
                # invalidated, so one retry runs on a fresh connection.
                if exc.connection_invalidated and attempt == 1:
                    continue
                log.warning("dispatch.failed", run_id=run_id, error=_short(exc))
                return None
            except SQLAlchemyError as exc:
                log.warning("dispatch.failed", run_id=run_id, error=_short(exc))
                return None
        self._observe(step, time.monotonic() - started)
        return step

    def _observe(self, step: Step, seconds: float) -> None:
        if step.phase is None or step.run is None:
            return  # no task ran: waiting, busy, backing off or terminal
        if step.outcome is Outcome.ADVANCED:
            self._metrics.transitions.labels(step.phase, step.run.phase).inc()
            self._metrics.phase_duration.labels(step.phase).observe(seconds)
        else:
            self._metrics.failures.labels(step.phase).inc()


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
