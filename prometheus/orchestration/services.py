"""Maintenance services: each job of the reactor that is not a phase (the sweep, the
heartbeat, calendar runs) runs on a thread of its own, with its own interval, its own
failures and its own health.

As River runs its rescuer, cleaner and scheduler: one job's failure never stops
another. A round that raises anything is logged with the service's own event and retried
after a capped, jittered backoff; the loop ends only when the reactor stops. A service's
step returns how soon it wants its next round (None: after its interval), so a service
can come back early (the sweep, when a backoff ends) or poll faster for a while.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import structlog
from sqlalchemy.exc import SQLAlchemyError

from prometheus.errors import first_line
from prometheus.logs import get_logger
from prometheus.orchestration.metrics import ReactorMetrics

log = get_logger(__name__)

#: A service is unhealthy when its last round failed, or when it has not finished a round
#: for this many of its intervals (plus STALE_GRACE_S): its step is stuck.
STALE_INTERVALS = 3
STALE_GRACE_S = 5.0
FIRST_RETRY_S = 1.0  # after an outage the pool's connections are dead: a prompt retry works


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter (as psycopg_pool's AttemptWithBackoff)."""

    initial: float = 0.5
    cap: float = 15.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * 2**self.attempt)
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


Job = Callable[[], float | None]  # one round; seconds until the next is wanted, or None


class Service:
    """One maintenance job on its own thread: ``step`` every ``interval`` seconds."""

    def __init__(
        self,
        name: str,
        step: Job,
        *,
        interval: float,
        failed_event: str,
        reactor_id: str,
        metrics: ReactorMetrics,
        stop: threading.Event,
    ) -> None:
        self.name = name
        self.interval = interval
        self.step = step  # the job: one round, returning when it wants the next
        self._failed_event = failed_event  # stable: alerting keys on it
        self._reactor_id = reactor_id
        self._metrics = metrics
        self._stop = stop
        self._wake = threading.Event()
        self._backoff = Backoff(initial=min(FIRST_RETRY_S, interval), cap=interval)
        self.rounds = 0  # finished rounds, failed ones included
        self.last_round: float | None = None  # time.time() when the last round ended
        self.failures = 0  # consecutive failed rounds
        self.last_error: str | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        """Run a round as soon as possible (or, once the reactor stops, leave)."""
        self._wake.set()

    @property
    def pending(self) -> bool:
        """A round has been asked for and has not started yet."""
        return self._wake.is_set()

    def healthy(self, now: float) -> bool:
        """The last round succeeded and ended recently enough (``now`` is time.time())."""
        stale_after = STALE_INTERVALS * self.interval + STALE_GRACE_S
        return (
            self.failures == 0
            and self.last_round is not None
            and now - self.last_round < stale_after
        )

    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(reactor_id=self._reactor_id)
        while not self._stop.is_set():
            self._wake.clear()  # before the round: a wake during it asks for another
            delay = self._round()
            self.rounds += 1
            self.last_round = time.time()
            self._wake.wait(delay)

    def _round(self) -> float:
        """One round; the seconds to wait before the next."""
        try:
            wanted = self.step()
        except Exception as exc:  # the outermost loop of this service: say it, retry, go on
            return self._failed(exc)
        if self.failures:
            log.info("service.recovered", service=self.name, failures=self.failures)
        self.failures, self.last_error = 0, None
        self._backoff.reset()
        self._metrics.service_last_success.labels(self.name).set_to_current_time()
        return self.interval if wanted is None else max(0.0, min(wanted, self.interval))

    def _failed(self, exc: Exception) -> float:
        self.failures += 1
        self.last_error = first_line(exc)
        self._metrics.service_failures.labels(self.name).inc()
        delay = self._backoff.next_delay()
        # A database error is an outage the service rides out; anything else is a bug or a
        # bad configuration, which an operator must hear about at once.
        outage = isinstance(exc, SQLAlchemyError | psycopg.Error)
        (log.warning if outage else log.error)(
            self._failed_event,
            service=self.name,
            error=self.last_error,
            error_type=type(exc).__name__,
            failures=self.failures,
            retry_in_s=round(delay, 3),
        )
        return delay
