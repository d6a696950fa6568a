"""The reactor (SPEC section 6): listener, dispatcher, maintenance services and health,
wired together.

Run it as ``prometheus reactor`` or ``python -m prometheus.orchestration.engine_daemon``.
SIGTERM/SIGINT stop it taking work and let running phases finish (bounded by the
shutdown timeout); SIGKILL loses nothing, because every claim is a row lock that dies
with the connection and every phase commits with its work or not at all.
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from prometheus.calendar import TradingCalendar
from prometheus.checks import CheckPolicy, find_problems
from prometheus.config import METRICS_HOST_DEFAULT, Settings, redact_urls, shown_database_url
from prometheus.db.connect import make_engine
from prometheus.db.embedded import with_database
from prometheus.db.migrate import require_upgraded
from prometheus.db.sqlstate import is_standby_error, standby_error
from prometheus.errors import PrometheusError, first_line
from prometheus.logs import configure_logging, get_logger
from prometheus.orchestration.dispatcher import Dispatcher
from prometheus.orchestration.health import HealthServer
from prometheus.orchestration.heartbeat import beat, mark_stopped
from prometheus.orchestration.listener import Listener, prove
from prometheus.orchestration.metrics import Figure, ReactorMetrics
from prometheus.orchestration.services import Service
from prometheus.orchestration.sweeper import poll, sweep
from prometheus.pipeline.calendar_runs import ensure_calendar_runs
from prometheus.pipeline.registry import phase_tasks

log = get_logger(__name__)

WATCH_SECONDS = 0.5


def new_reactor_id() -> str:
    """Unique per process: host, pid and a random part (pids are reused across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Reactor:
    """The listener wakes the dispatcher's workers; maintenance services (sweep, heartbeat,
    calendar runs), each on its own thread with its own interval and failures, keep the
    rest true; /healthz and /metrics say how each part is doing."""

    listener: Listener  # set after the services that call into it

    def __init__(
        self,
        settings: Settings,
        *,
        metrics_host: str = METRICS_HOST_DEFAULT,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock``: the instant calendar runs are created for (tests move time with it);
        None, the database's now()."""
        if settings.database_url is None:
            raise PrometheusError("the reactor needs a database URL")
        self.settings = settings
        self.reactor_id = new_reactor_id()
        self.metrics = ReactorMetrics()
        self._stop = threading.Event()
        self._signal_received: str | None = None
        self._clock = clock
        self._calendar = TradingCalendar(settings.region_exchanges)
        self.engine = make_engine(
            settings.database_url,
            application_name=f"prometheus-reactor:{self.reactor_id}"[:63],
            pool_size=settings.concurrency + 2,
        )
        self.dispatcher = Dispatcher(
            self.engine,
            settings,
            actor=self.reactor_id,
            metrics=self.metrics,
            # The sweep after a failed attempt learns when its backoff ends and wakes then.
            on_retry_scheduled=lambda: self.sweeper.wake(),
        )
        self.sweeper = self._service(
            "sweep",
            functools.partial(sweep, self.engine, dispatcher=self.dispatcher, metrics=self.metrics),
            interval=settings.sweep_interval,
            failed_event="sweep.failed",
        )
        self.heartbeat = self._service(
            "heartbeat",
            functools.partial(
                beat,
                self.engine,
                reactor_id=self.reactor_id,
                listener=lambda: (self.listener.hears, self.listener.problem),
            ),
            interval=settings.heartbeat_interval,
            failed_event="heartbeat.failed",
        )
        self.calendar_runs = self._service(
            "calendar_runs",
            self._create_calendar_runs,
            interval=settings.sweep_interval,
            failed_event="calendar_runs.failed",
        )
        self.poller = self._service(
            "poll",
            functools.partial(
                poll,
                self.engine,
                dispatcher=self.dispatcher,
                metrics=self.metrics,
                needed=lambda: not self.listener.hearing,
            ),
            interval=settings.poll_interval,
            failed_event="poll.failed",
        )
        self.listener_check = self._service(
            "listener_check",
            lambda: prove(self.listener, self.engine),
            interval=settings.listener_check_interval,
            failed_event="listener_check.failed",
        )
        self.services: tuple[Service, ...] = (
            self.sweeper,
            self.heartbeat,
            self.calendar_runs,
            self.poller,
            self.listener_check,
        )
        self.listener = Listener(
            settings.listen_dsn or settings.database_url,
            shown_url=settings.redacted_listen_dsn(),
            reactor_id=self.reactor_id,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
            on_connected=self._listener_connected,
            on_deaf=self.poller.wake,
            poll_interval_s=settings.poll_interval.total_seconds(),
            stop=self._stop,
        )
        self.health: HealthServer | None = None
        if settings.metrics_port is not None:
            self.health = HealthServer(
                metrics_host,
                settings.metrics_port,
                health=self.health_report,
                registry=self.metrics.registry,
            )
        self.metrics.watch_workers(lambda: self.dispatcher.in_progress, self.dispatcher.wedged)
        self.metrics.watch_database(self._database_figures)

    def _service(
        self, name: str, step: Callable[[], float | None], *, interval: timedelta, failed_event: str
    ) -> Service:
        return Service(
            name,
            step,
            interval=interval.total_seconds(),
            failed_event=failed_event,
            reactor_id=self.reactor_id,
            metrics=self.metrics,
            stop=self._stop,
        )

    def _listener_connected(self) -> None:
        self.sweeper.wake()  # what was notified while nobody listened
        self.listener_check.wake()  # prove it hears, now

    def _create_calendar_runs(self) -> None:
        """The calendar service's step: the rule is the pipeline's, the timing is ours."""
        now = self._clock() if self._clock is not None else None
        created = ensure_calendar_runs(self.engine, self._calendar, actor=self.reactor_id, now=now)
        if created:
            log.info("calendar_runs.created", runs=created)

    def run(self) -> int:
        """Serve until asked to stop; 0 after a clean stop, 1 if a part of it died."""
        try:
            require_upgraded(self.engine)
            phase_tasks(self.settings.phase_tasks)  # a bad plug-in fails here, not in a phase
        except BaseException:
            self._close_unstarted()
            raise
        self._install_signal_handlers()
        self.dispatcher.start()
        for service in self.services:
            service.start()
        self.listener.start()
        if self.health is not None:
            self.health.start()
        log.info(
            "reactor.started",
            reactor_id=self.reactor_id,
            database=self.settings.redacted_dsn(),
            listen=self.settings.redacted_listen_dsn(),
            concurrency=self.settings.concurrency,
            sweep_interval_s=self.settings.sweep_interval.total_seconds(),
            metrics_port=self.health.port if self.health else None,
        )
        code = 0
        while not self._stop.wait(WATCH_SECONDS):
            if self._signal_received is not None:
                log.info("reactor.signal_received", signal=self._signal_received)
                break
            dead = self._dead_parts()
            if dead:
                log.error("reactor.side_task_died", parts=dead)
                code = 1
                break
        return max(code, self.shutdown())

    def _close_unstarted(self) -> None:
        """Release what the constructor took (the health socket, the pool) when run() fails
        before anything started."""
        if self.health is not None:
            self.health.stop()
        self.engine.dispose()

    def request_stop(self) -> None:
        self._stop.set()
        for service in self.services:
            service.wake()  # so it sees the stop

    def shutdown(self) -> int:
        self.request_stop()
        log.info(
            "reactor.stop_requested",
            reactor_id=self.reactor_id,
            runs_in_progress=self.dispatcher.in_progress,
        )
        drained = self.dispatcher.stop(self.settings.shutdown_timeout.total_seconds())
        if not drained:
            log.warning("reactor.drain_timed_out", reactor_id=self.reactor_id)
        self.listener.thread.join(5)
        for service in self.services:
            service.thread.join(5)
        mark_stopped(self.engine, reactor_id=self.reactor_id)
        if self.health is not None:
            self.health.stop()
        self.engine.dispose()
        log.info("reactor.stopped", reactor_id=self.reactor_id, drained=drained)
        return 0

    def health_report(self) -> Mapping[str, Any]:
        """SPEC's six keys, plus why it is degraded: workers wedged by a task that never
        returns, and maintenance services whose last round failed or is long overdue."""
        now = time.time()
        failing = [s.name for s in self.services if not s.healthy(now)]
        wedged = self.dispatcher.wedged()
        connected = self.listener.connected.is_set()
        rounds = [s.last_round for s in self.services if s.last_round is not None]
        last_tick = min(rounds) if len(rounds) == len(self.services) else None
        hearing = self.listener.hearing
        return {
            "status": "ok" if hearing and not failing and not wedged else "degraded",
            "reactor_id": self.reactor_id,
            "last_tick": _iso(last_tick),  # every service has finished a round since
            "last_notification": _iso(self.listener.last_notification),
            "runs_in_progress": self.dispatcher.in_progress,
            "database_connected": connected,
            "wedged_workers": wedged,
            "failing_services": failing,
            "listener_hears": self.listener.hears if connected else False,
            "listener_problem": self.listener.problem,
            "last_listener_proof": _iso(self.listener.last_proof),
            "polling": not hearing,
        }

    def _database_figures(self) -> Mapping[str, Figure]:
        """What `prometheus check` sees, as gauges: every reactor reports the same truth."""
        report = find_problems(self.engine, CheckPolicy(), calendar=self._calendar)
        return {
            "runs": {str(phase): float(n) for phase, n in report.runs_by_phase.items()},
            "check_problems": {str(k): float(n) for k, n in report.problems_by_kind.items()},
            "notification_queue_usage": report.notify_queue_usage,
        }

    def _dead_parts(self) -> list[str]:
        parts = {
            "listener": self.listener.thread.is_alive(),
            "dispatcher": self.dispatcher.alive(),
            **{service.name: service.thread.is_alive() for service in self.services},
        }
        return [name for name, alive in parts.items() if not alive]

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # in-process reactors (tests, demo, bench) are stopped by request_stop

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # Only note it: the main loop acts on it within WATCH_SECONDS. The handler runs
            # in the main thread between two bytecodes, maybe while that thread holds the
            # lock of self._stop (inside its wait()) or the logger's, so setting the Event
            # or logging from here could deadlock the very stop it asks for.
            self._signal_received = signal.Signals(signum).name

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)


def serve(settings: Settings, *, metrics_host: str = METRICS_HOST_DEFAULT) -> int:
    """Run a reactor in this process until it is stopped; return the exit code."""
    return Reactor(with_database(settings), metrics_host=metrics_host).run()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m prometheus.orchestration.engine_daemon``: the reactor for a unit file
    that calls the module; flags as ``prometheus reactor``, environment as everywhere."""
    parser = argparse.ArgumentParser(prog="engine_daemon", description="The Prometheus reactor.")
    parser.add_argument("--database-url")
    parser.add_argument("--sweep-interval", type=float, metavar="SECONDS")
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--metrics-port", type=int)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        settings = Settings.from_process_env(
            database_url=args.database_url,
            sweep_interval=None
            if args.sweep_interval is None
            else timedelta(seconds=args.sweep_interval),
            concurrency=args.concurrency,
            metrics_port=args.metrics_port,
        )
        return serve(settings)
    except PrometheusError as exc:
        return _fail(str(exc), exc.exit_code)
    except (SQLAlchemyError, psycopg.Error) as exc:  # the database is unreachable, say
        if is_standby_error(exc):
            return _fail(str(standby_error(shown_database_url(argv or sys.argv[1:]))), 1)
        return _fail(f"database error: {first_line(exc)}", 1)


def _fail(message: str, code: int) -> int:
    print(f"engine_daemon: error: {redact_urls(message)}", file=sys.stderr)
    return code


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


if __name__ == "__main__":
    sys.exit(main())
