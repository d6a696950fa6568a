"""The reactor's Prometheus metrics, in a registry of its own (one per reactor object,
so several reactors in one process, as in tests and benchmarks, never collide)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from prometheus.errors import first_line
from prometheus.logs import get_logger

log = get_logger(__name__)

_FAST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_PHASE_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)


#: A database figure: one value, or values by label (``phase`` for runs, else ``kind``).
Figure = float | Mapping[str, float]
DatabaseFigures = Callable[[], Mapping[str, Figure]]
#: While reads keep failing, one ``metrics.database_read_failed`` line per this many
#: seconds: Prometheus scrapes every few seconds, and an outage is one event, not many.
READ_FAILED_LOG_EVERY_S = 60.0


class DatabaseGauges(Collector):
    """Figures read from the database at scrape time (runs by phase, stuck runs, the
    `check` problems), so every reactor reports the same truth, not its own memory.

    A read that fails leaves them out of that scrape (the reactor's own metrics still
    answer), and says so: ``metrics.database_read_failed`` at the first failure and then
    at most once a minute while they go on (with how many scrapes failed), a warning for a
    database error (an outage), an error for anything else (a bug in a read);
    ``metrics.database_read_recovered`` when a read works again."""

    def __init__(self, read: DatabaseFigures) -> None:
        self._read = read
        self._lock = threading.Lock()  # scrapes may come on several threads at once
        self._failures = 0  # consecutive failed reads
        self._logged_at: float | None = None  # time.monotonic() of the last failure line

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            figures = self._read()
        except Exception as exc:  # the outermost frame of this scrape's read: say it, go on
            self._failed(exc)
            return
        self._recovered()
        for name, series in figures.items():
            help_text = _GAUGE_HELP.get(name, name)
            if not isinstance(series, Mapping):
                yield GaugeMetricFamily(f"prometheus_{name}", help_text, value=series)
                continue
            label = "phase" if name == "runs" else "kind"
            family = GaugeMetricFamily(f"prometheus_{name}", help_text, labels=[label])
            for key, value in sorted(series.items()):
                family.add_metric([key], value)
            yield family

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            due = self._logged_at is None or now - self._logged_at >= READ_FAILED_LOG_EVERY_S
            if due:
                self._logged_at = now
            failures = self._failures
        if due:
            outage = isinstance(exc, SQLAlchemyError | psycopg.Error)
            (log.warning if outage else log.error)(
                "metrics.database_read_failed",
                error=first_line(exc),
                error_type=type(exc).__name__,
                failures=failures,
            )

    def _recovered(self) -> None:
        with self._lock:
            failures, self._failures, self._logged_at = self._failures, 0, None
        if failures:
            log.info("metrics.database_read_recovered", failures=failures)


_GAUGE_HELP = {
    "runs": "Runs by phase, from engine_runs.",
    "check_problems": "Problems `prometheus check` would report, by kind.",
    "notification_queue_usage": (
        "pg_notification_queue_usage(): the fraction of the server's NOTIFY queue in use;"
        " a listener that never reads holds it; past prometheus.notify_queue_limit (0.5)"
        " the engine stops notifying, and reactors poll."
    ),
}


class ReactorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.transitions = Counter(
            "prometheus_transitions",
            "Phase transitions made by this reactor.",
            ["from_phase", "to_phase"],
            registry=r,
        )
        self.failures = Counter(
            "prometheus_phase_failures",
            "Failed phase attempts (a phase abandoned past its timeout included).",
            ["phase"],
            registry=r,
        )
        self.phase_duration = Histogram(
            "prometheus_phase_duration_seconds",
            "Time a phase task and its commit took.",
            ["phase"],
            buckets=_PHASE_BUCKETS,
            registry=r,
        )
        self.notification_to_start = Histogram(
            "prometheus_notification_to_start_seconds",
            "From a notification's arrival to the start of the advance it asked for.",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.notifications = Counter(
            "prometheus_notifications", "Notifications received.", ["channel"], registry=r
        )
        self.malformed = Counter(
            "prometheus_notifications_malformed",
            "Notifications dropped as malformed.",
            ["channel"],
            registry=r,
        )
        self.sweeps = Counter("prometheus_sweeps", "Sweeps run.", registry=r)
        self.swept_runs = Counter("prometheus_swept_runs", "Runs a sweep found due.", registry=r)
        self.reconnects = Counter(
            "prometheus_listener_reconnects", "Listener connection losses.", registry=r
        )
        self.listener_hears = Gauge(
            "prometheus_listener_hears",
            "1 while the listener is proven to receive notifications, 0 while it cannot"
            " (a transaction pooler, a standby): the reactor polls then.",
            registry=r,
        )
        self.polls = Counter(
            "prometheus_polls",
            "Looks for due runs made because the listener could not hear.",
            registry=r,
        )
        self.in_progress = Gauge(
            "prometheus_runs_in_progress", "Runs this reactor is advancing now.", registry=r
        )
        self.wedged_workers = Gauge(
            "prometheus_wedged_workers",
            "Workers in one phase for longer than the phase timeout and its grace: a task "
            "that never returns holds its worker.",
            registry=r,
        )
        self.service_failures = Counter(
            "prometheus_service_failures",
            "Failed rounds of a maintenance service (sweep, heartbeat, calendar_runs).",
            ["service"],
            registry=r,
        )
        self.service_last_success = Gauge(
            "prometheus_service_last_success_timestamp_seconds",
            "When a maintenance service last finished a round without error.",
            ["service"],
            registry=r,
        )

    def watch_workers(self, in_progress: Callable[[], int], wedged: Callable[[], int]) -> None:
        """The worker gauges are read from the dispatcher at scrape time: the truth now."""
        self.in_progress.set_function(in_progress)
        self.wedged_workers.set_function(wedged)

    def watch_database(self, read: DatabaseFigures) -> None:
        self.registry.register(DatabaseGauges(read))
