"""N worker threads that claim due runs and step each until it waits, finishes or fails.

A notification does not carry work: it wakes a worker, and the worker claims the oldest
due run that nobody holds (``FOR NO KEY UPDATE SKIP LOCKED``). So notifications for one run
coalesce by construction, several reactors never try the same run, and nothing is lost
between a wake and a claim: a worker claims until nothing is due before it sleeps.

Under a backlog (its next claim still finds a due run no idle worker has taken) a worker
steps several runs per transaction, up to the batch limits (``PROMETHEUS_BATCH_MAX_RUNS``,
``PROMETHEUS_BATCH_MAX_MS``), and carries them on together, phase after phase; with no
backlog, or with slow tasks, each transaction holds one run, as ever (``pipeline.stepping``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from prometheus.config import Settings
from prometheus.db.sqlstate import is_standby_error, standby_error
from prometheus.errors import first_line
from prometheus.logs import get_logger
from prometheus.orchestration.metrics import ReactorMetrics
from prometheus.pipeline.state import Outcome, Run, Step, advance_batch
from prometheus.pipeline.stepping import TERMINATE_GRACE_S, BatchLimits

log = get_logger(__name__)


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        actor: str,
        metrics: ReactorMetrics,
        on_retry_scheduled: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._actor = actor
        self._metrics = metrics
        self._on_retry_scheduled = on_retry_scheduled  # so the sweeper wakes when it is due
        self._cond = threading.Condition()
        self._signalled = False
        self._notified_at: float | None = None  # earliest unserved notification
        self._accepting = True
        # Worker thread -> time.monotonic() when its current step began: what is in
        # progress, and which workers a task that never returns has wedged.
        self._stepping: dict[int, float] = {}
        self._wedged_after = settings.phase_timeout.total_seconds() + TERMINATE_GRACE_S
        self._limits = BatchLimits(settings.batch_max_runs, settings.batch_max_time.total_seconds())
        self._threads = [
            threading.Thread(target=self._work, name=f"dispatcher-{i}", daemon=True)
            for i in range(settings.concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def in_progress(self) -> int:
        """Workers stepping a run now."""
        with self._cond:
            return len(self._stepping)

    def wedged(self) -> int:
        """Workers in one step for longer than the phase timeout and its grace: by then a
        timed-out phase has been cancelled, its session ended and its attempt counted,
        so only a task that does not return can still hold the worker."""
        stuck_since = time.monotonic() - self._wedged_after
        with self._cond:
            return sum(1 for began in self._stepping.values() if began < stuck_since)

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def wake(self, *, notified_at: float | None = None) -> None:
        """There may be work (a notification): one idle worker goes to look."""
        with self._cond:
            self._signalled = True
            if notified_at is not None and self._notified_at is None:
                self._notified_at = notified_at
            self._cond.notify()

    def wake_all(self) -> None:
        """There may be a lot of work (a sweep): every idle worker goes to look."""
        with self._cond:
            self._signalled = True
            self._cond.notify_all()

    def stop(self, timeout: float) -> bool:
        """Take no more work, let running phases finish; True if they did in time."""
        with self._cond:
            self._accepting = False
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _work(self) -> None:
        structlog.contextvars.bind_contextvars(reactor_id=self._actor)
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._signalled or not self._accepting)
                if not self._accepting:
                    return
                self._signalled = False
                notified_at, self._notified_at = self._notified_at, None
            try:
                self._drain(notified_at)
            except Exception as exc:  # the outermost loop: one bad run must not kill a worker
                log.error("dispatch.crashed", error=first_line(exc), error_type=type(exc).__name__)

    def _drain(self, notified_at: float | None) -> None:
        """Claim and step runs until nothing is due (or a stop is requested): the runs
        this worker has moved on first, step after step until they wait, finish or fail,
        then the oldest due runs."""
        mine: list[int] = []
        while self._accepting:
            if notified_at is not None:
                self._metrics.notification_to_start.observe(time.monotonic() - notified_at)
                notified_at = None
            steps = self._step(mine)
            if not steps:
                return
            mine = [s.run.run_id for s in steps if s.run is not None and s.should_continue]

    def _step(self, mine: list[int]) -> list[Step]:
        """One transaction: a step of each run of ``mine``, topped up with due runs while
        the batch limits allow; the steps taken, none if there was nothing to claim."""
        worker = threading.get_ident()

        def task_started(run: Run) -> None:
            with self._cond:
                self._stepping[worker] = time.monotonic()

        with self._cond:
            self._stepping[worker] = time.monotonic()
        try:
            return self._try_step(mine, task_started)
        except Exception as exc:  # a bug or a refusal, not an outage: say which runs, go on
            log.error(
                "dispatch.crashed",
                run_ids=mine,
                error=first_line(exc),
                error_type=type(exc).__name__,
            )
            return []
        finally:
            with self._cond:
                del self._stepping[worker]

    def _try_step(self, mine: list[int], task_started: Callable[[Run], None]) -> list[Step]:
        for attempt in (1, 2):
            try:
                steps = advance_batch(
                    self._engine,
                    runs=mine,
                    limits=self._limits,
                    settings=self._settings,
                    actor=self._actor,
                    notify=False,
                    on_task=task_started,
                    on_abandoned=self._observe,  # its worker reports only a lost connection
                )
                break
            except DBAPIError as exc:
                # A pooled connection killed under us (server restart): the pool has been
                # invalidated, so one retry runs on a fresh connection.
                if exc.connection_invalidated and attempt == 1:
                    continue
                log.warning("dispatch.failed", run_ids=mine, error=self._describe(exc))
                return []
            except SQLAlchemyError as exc:
                log.warning("dispatch.failed", run_ids=mine, error=first_line(exc))
                return []
        for step in steps:
            self._observe(step)
        return steps

    def _describe(self, exc: DBAPIError) -> str:
        """The error as one line; a standby's refusal to write says what to set."""
        if is_standby_error(exc):
            return str(standby_error(self._settings.redacted_dsn()))
        return first_line(exc)

    def _observe(self, step: Step) -> None:
        """Metrics of a step, and a wake for the sweep when a retry is scheduled (it then
        sweeps as the backoff ends). Called from workers and from the phase watchdog."""
        if step.phase is None or step.run is None:
            return  # no task ran: waiting, busy, backing off or terminal
        if step.outcome is Outcome.ADVANCED:
            self._metrics.transitions.labels(step.phase, step.run.phase).inc()
            self._metrics.phase_duration.labels(step.phase).observe(step.took_s or 0.0)
        else:
            self._metrics.failures.labels(step.phase).inc()
            if step.outcome is Outcome.RETRY_SCHEDULED:
                self._on_retry_scheduled()
