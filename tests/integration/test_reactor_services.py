"""The reactor's health at the edges, in-process against a real database: workers wedged
by a task that never returns, maintenance services that fail and recover, and the calendar
service years after the process started."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from structlog.testing import capture_logs

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.orchestration.services import Service
from prometheus.pipeline.calendar_runs import CALENDAR_LOOKBACK
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, get_run, list_runs, update_phase
from tests.support import reactor_tasks
from tests.support.inprocess import ReactorThreads, RunningReactor
from tests.support.task_modules import WEDGE_ENTERED
from tests.support.waiting import wait_until

DEADLINE = 30.0
HOUR = timedelta(hours=1)
DAY = date(2026, 11, 24)


def health(running: RunningReactor, code: int) -> dict[str, Any]:
    """The /healthz report if it answered ``code`` (empty, so falsy, if not)."""
    status, report = running.healthz()
    return report if status == code else {}


def gauge(running: RunningReactor, name: str) -> float:
    ((_, value),) = running.scraped()[name]
    return value


# -- wedged workers --------------------------------------------------------------------


def test_a_worker_wedged_by_a_task_that_never_returns_makes_healthz_degraded(
    reactors: ReactorThreads, engine: Engine, settings: Settings, wedge_release: Any
) -> None:
    """The task blocks in Python past the phase timeout: its session is ended and its
    attempt counted, but the worker stays stuck. /healthz says so (503, wedged_workers),
    and /metrics too; runs_in_progress is the truth throughout."""
    running = reactors.start(
        replace(
            settings,
            phase_tasks="tests.support.task_modules",
            phase_timeout=timedelta(seconds=1),
            retry_base=HOUR,
            sweep_interval=HOUR,
            concurrency=2,
            metrics_port=0,
        )
    )
    running.wait_ready()
    assert health(running, 200)
    assert gauge(running, "prometheus_runs_in_progress") == 0

    run = ensure_run(engine, DAY, "WEDGES", data_ready=True, actor="test")
    assert WEDGE_ENTERED.wait(DEADLINE), "the reactor never started the phase"
    assert gauge(running, "prometheus_runs_in_progress") == 1

    report = wait_until(lambda: health(running, 503), timeout=DEADLINE, what="/healthz 503")
    assert report["status"] == "degraded"
    assert (report["wedged_workers"], report["runs_in_progress"]) == (1, 1)
    assert (report["database_connected"], report["failing_services"]) == (True, [])
    assert gauge(running, "prometheus_wedged_workers") == 1
    assert gauge(running, "prometheus_runs_in_progress") == 1
    wait_until(  # and yet the run was freed, and its timed-out attempt counted
        lambda: (r := get_run(engine, run.run_id)) is not None and r.attempts == 1,
        timeout=DEADLINE,
        what="the timeout counted",
    )
    assert health(running, 503)["wedged_workers"] == 1  # the worker is still stuck

    wedge_release.set()  # the task returns at last, to a session that was ended
    report = wait_until(lambda: health(running, 200), timeout=DEADLINE, what="/healthz 200")
    assert (report["wedged_workers"], report["runs_in_progress"]) == (0, 0)
    assert gauge(running, "prometheus_wedged_workers") == 0
    assert gauge(running, "prometheus_runs_in_progress") == 0


def test_an_abandoned_phase_counts_as_a_failure_and_is_retried_when_its_backoff_ends(
    reactors: ReactorThreads, engine: Engine, settings: Settings, wedge_release: Any
) -> None:
    """The first attempt blocks in Python past the phase timeout: its session is ended and
    the attempt counted apart, while its worker stays stuck. That attempt shows in
    /metrics like any failed one, and its retry starts when its short backoff ends, on
    the other worker: the sweep, an hour apart, is woken for it."""
    running = reactors.start(
        replace(
            settings,
            phase_tasks="tests.support.task_modules",
            phase_timeout=timedelta(seconds=1),
            retry_base=timedelta(seconds=1),
            sweep_interval=HOUR,
            concurrency=2,
            metrics_port=0,
        )
    )
    running.wait_ready()
    failures = 'prometheus_phase_failures_total{phase="DATA_READY"}'

    run = ensure_run(engine, DAY, "WEDGES_ONCE", data_ready=True, actor="test")
    assert WEDGE_ENTERED.wait(DEADLINE), "the reactor never started the phase"
    wait_until(
        lambda: failures in running.metrics_text(), timeout=DEADLINE, what="a failure counted"
    )
    assert running.scraped()["prometheus_phase_failures_total"] == [({"phase": "DATA_READY"}, 1)]
    wait_until(
        lambda: (r := get_run(engine, run.run_id)) is not None and r.phase is Phase.COMPLETED,
        timeout=DEADLINE,
        what="the run retried after its backoff and COMPLETED",
    )
    assert health(running, 503)["wedged_workers"] == 1  # the first worker is still stuck
    done = get_run(engine, run.run_id)
    assert done is not None and done.attempts == 0  # reset by the phase change
    assert running.sample("prometheus_sweeps_total") >= 2  # the start's, and the woken one


# -- maintenance services ------------------------------------------------------------------


class Fault:
    """A non-database exception in one service's step, until the test removes it."""

    def __init__(self) -> None:
        self.on = True

    def wrap(self, step: Callable[[], float | None]) -> Callable[[], float | None]:
        def faulty() -> float | None:
            if self.on:
                raise ZeroDivisionError("injected: a bug in the step")
            return step()

        return faulty


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        phase_tasks=reactor_tasks.MODULE,
        sweep_interval=timedelta(seconds=0.5),
        heartbeat_interval=timedelta(seconds=0.2),
        concurrency=2,
        metrics_port=0,
    )


def database_clock(
    engine: Engine, fault: Fault | None = None, ahead: timedelta = timedelta(0)
) -> Callable[[], datetime]:
    """The instant calendar runs are made for: the database's now() (plus ``ahead``), read
    over a connection of the test's own; raises while ``fault`` is on."""

    def now() -> datetime:
        if fault is not None and fault.on:
            raise ZeroDivisionError("injected: a bad clock")
        with engine.connect() as conn:
            stamp: datetime = conn.execute(
                text("SELECT now() + make_interval(secs => :s)"), {"s": ahead.total_seconds()}
            ).scalar_one()
        return stamp

    return now


def last_seen(engine: Engine, reactor_id: str) -> datetime | None:
    with engine.connect() as conn:
        seen: datetime | None = conn.execute(
            text("SELECT last_seen_at FROM reactor_heartbeats WHERE reactor_id = :r"),
            {"r": reactor_id},
        ).scalar_one_or_none()
    return seen


def proves_it_works(
    name: str, running: RunningReactor, engine: Engine, day: date
) -> Callable[[], object]:
    """Something only that service does, done now, and a probe that sees it done."""
    if name == "sweep":  # a run made ready without a notification: only a sweep finds it
        with engine.begin() as conn:
            run = ensure_run(conn, day, "US", data_ready=False, actor="test")
            update_phase(conn, run, Phase.DATA_READY, actor="test", notify=False)
        return lambda: (r := get_run(engine, run.run_id)) is not None and r.phase is Phase.COMPLETED
    if name == "heartbeat":
        before = last_seen(engine, running.reactor_id)
        return lambda: (
            (seen := last_seen(engine, running.reactor_id)) and (before is None or seen > before)
        )
    with engine.begin() as conn:  # calendar runs for a region that starts requiring data
        conn.execute(text("INSERT INTO region_datasets VALUES ('UK', 'prices')"))
    return lambda: list_runs(engine, region="UK")


SERVICES = ["sweep", "heartbeat", "calendar_runs"]


@pytest.mark.parametrize("broken", SERVICES)
def test_a_service_that_raises_does_not_stop_the_others_and_recovers(
    reactors: ReactorThreads, engine: Engine, fast_settings: Settings, broken: str
) -> None:
    fault = Fault()
    clock = database_clock(engine, fault if broken == "calendar_runs" else None)
    with capture_logs() as logs:
        running = reactors.start(fast_settings, clock=clock)
        services: dict[str, Service] = {s.name: s for s in running.reactor.services}
        if broken != "calendar_runs":
            services[broken].step = fault.wrap(services[broken].step)
        wait_until(
            lambda: health(running, 503).get("failing_services") == [broken],
            timeout=DEADLINE,
            what=f"only {broken} reported failing",
        )
        wait_until(lambda: services[broken].failures >= 2, timeout=DEADLINE, what="retried")

        for day, name in enumerate(n for n in SERVICES if n != broken):
            works = proves_it_works(name, running, engine, DAY + timedelta(days=day))
            wait_until(works, timeout=DEADLINE, what=f"{name} working while {broken} fails")
        assert services[broken].failures >= 2 and running.thread.is_alive()

        fault.on = False  # the cause goes
        works = proves_it_works(broken, running, engine, DAY + timedelta(days=7))
        wait_until(works, timeout=DEADLINE, what=f"{broken} working again")
        wait_until(lambda: health(running, 200), timeout=DEADLINE, what="/healthz 200 again")
    failed = [e for e in logs if e["event"] == f"{broken}.failed"]
    assert failed and failed[0]["error_type"] == "ZeroDivisionError"
    assert {"event": "service.recovered", "service": broken} in [
        {"event": e["event"], "service": e.get("service")} for e in logs
    ]
    assert running.sample("prometheus_service_failures_total", {"service": broken}) >= 2
    assert running.stop() == 0  # it never exited on its own: a clean stop


# -- the calendar service, years on ------------------------------------------------------


def test_the_calendar_service_creates_runs_years_after_the_process_started(
    reactors: ReactorThreads, engine: Engine, fast_settings: Settings
) -> None:
    """A reactor years old: its clock (the database's now(), moved on) is far past the
    calendar window it loaded at start, and it still creates the runs that close."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO region_datasets VALUES ('US', 'prices')"))
    calendar = TradingCalendar()
    calendar.is_session("US", DAY)  # the first window a long-running process loads
    ahead = timedelta(days=3 * 365 + 10)
    clock = database_clock(engine, ahead=ahead)
    later = clock()
    expected = {s.date for s in calendar.closed_sessions("US", later, CALENDAR_LOOKBACK)}
    assert expected and all(d > DAY + timedelta(days=3 * 365) for d in expected)
    assert all(d.weekday() < 5 for d in expected)

    reactors.start(fast_settings, clock=clock)

    def us_runs() -> set[date]:
        return {r.as_of_date for r in list_runs(engine, region="US")}

    wait_until(lambda: us_runs() == expected, timeout=DEADLINE, what=f"US runs {expected}")
    assert all(r.phase is Phase.WAITING_FOR_DATA for r in list_runs(engine, region="US"))
