"""The backstop: find runs with work due and feed them to the dispatcher.

NOTIFY is not durable, so the sweep runs at start-up and after every reconnect (for
what was notified while nobody listened), every interval (for anything else missed),
and when the earliest backoff ends (so a retry waits its backoff, not a whole interval).
The same loop writes the heartbeat and creates calendar runs. It compares against the
database's clock only; it never decides anything a run's row decides.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.db.queries import query
from prometheus.errors import InputError, first_line
from prometheus.logs import get_logger
from prometheus.orchestration.dispatcher import Dispatcher
from prometheus.orchestration.metrics import ReactorMetrics
from prometheus.pipeline.state import count_due_runs, seconds_until_next_retry

log = get_logger(__name__)

CALENDAR_LOOKBACK = timedelta(days=4)  # covers a long weekend of reactor downtime
SWEEP_RETRY_SECONDS = 1.0


class Sweeper:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        reactor_id: str,
        dispatcher: Dispatcher,
        metrics: ReactorMetrics,
        stop: threading.Event,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._reactor_id = reactor_id
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._stop = stop
        self._calendar = TradingCalendar(settings.region_exchanges)
        self._wake = threading.Event()
        self.last_tick: float | None = None  # time.time() of the last completed loop
        self.thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def request_sweep(self) -> None:
        """Sweep as soon as possible (the listener calls this after each connect)."""
        self._wake.set()

    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(reactor_id=self._reactor_id)
        interval = self._settings.sweep_interval.total_seconds()
        heartbeat_every = self._settings.heartbeat_interval.total_seconds()
        next_sweep = next_heartbeat = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self._wake.is_set() or now >= next_sweep:
                self._wake.clear()
                try:
                    retry_in = self._sweep()
                except SQLAlchemyError as exc:
                    # Right after an outage the pool's connections are dead; the pool is
                    # invalidated by this failure, so a prompt second try succeeds.
                    log.warning("sweep.failed", error=first_line(exc))
                    retry_in = SWEEP_RETRY_SECONDS
                next_sweep = time.monotonic() + min(interval, retry_in or interval)
            if now >= next_heartbeat:
                self._beat()
                next_heartbeat = time.monotonic() + heartbeat_every
            self.last_tick = time.time()
            wait = max(0.0, min(next_sweep, next_heartbeat) - time.monotonic())
            self._wake.wait(wait)
            if self._stop.is_set():
                return

    def _sweep(self) -> float | None:
        """Queue every due run; return seconds until the earliest backoff ends."""
        started = time.monotonic()
        self._ensure_calendar_runs()
        due = count_due_runs(self._engine)
        retry_in = seconds_until_next_retry(self._engine)
        if due:
            self._dispatcher.wake_all()
        self._metrics.sweeps.inc()
        self._metrics.swept_runs.inc(due)
        log.info(
            "sweep.completed",
            due=due,
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )
        return max(retry_in, 0.05) if retry_in is not None else None

    def _ensure_calendar_runs(self) -> None:
        with self._engine.begin() as conn:
            now: datetime = conn.execute(query("database_now")).scalar_one()
            regions = list(conn.execute(query("calendar_regions")).scalars())
            pairs = []
            for region in regions:
                try:
                    sessions = self._calendar.closed_sessions(region, now, CALENDAR_LOOKBACK)
                except InputError:
                    continue  # no (or a mistyped) exchange for the region: no calendar runs
                pairs += [(session.date, region) for session in sessions]
            if pairs:
                conn.execute(
                    query("ensure_calendar_runs"),
                    {
                        "dates": [d for d, _ in pairs],
                        "regions": [r for _, r in pairs],
                        "actor": self._reactor_id,
                    },
                )

    def _beat(self) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    query("heartbeat"),
                    {
                        "reactor_id": self._reactor_id,
                        "host": socket.gethostname(),
                        "pid": os.getpid(),
                    },
                )
        except SQLAlchemyError as exc:
            log.warning("heartbeat.failed", error=first_line(exc))

    def mark_stopped(self) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(query("heartbeat_stopped"), {"reactor_id": self._reactor_id})
        except SQLAlchemyError:
            log.warning("heartbeat.failed", stopping=True)
