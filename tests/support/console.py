"""The web console in tests: the login the tests configure, and runs put where a page or
an action needs them (HTTP tests in tests/web, browser tests in tests/browser)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import (
    Run,
    advance_run,
    ensure_run,
    get_or_create_run,
)
from tests.support import web_tasks
from tests.support.inprocess import ReactorThreads, RunningReactor
from tests.support.placing import place
from tests.support.waiting import wait_until

USER = "alice"
PASSWORD = "c0rrect-h0rse-battery"
AUTH = (USER, PASSWORD)
ACTOR = f"web:{USER}"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def with_login(settings: Settings) -> Settings:
    """Actions enabled: a user and a password are configured."""
    return replace(settings, web_user=USER, web_password=PASSWORD)


def recent_sessions(calendar: TradingCalendar, region: str, count: int) -> list[date]:
    """The region's last ``count`` sessions up to today (as the overview's window)."""
    today = date.today()
    found = [s.date for s in calendar.sessions(region, today - timedelta(days=60), today)]
    return found[-count:]


def run_in(engine: Engine, day: date, region: str, phase: Phase) -> Run:
    """A run put in ``phase`` by a forced, audited change."""
    run = get_or_create_run(engine, day, region, actor="setup")
    return place(engine, run, phase)


def failed_run(engine: Engine, settings: Settings, day: date, region: str) -> Run:
    """A run whose signals task failed for real (its only attempt): FAILED, with the
    engine's last_error and events (the error text is ``web_tasks.ERROR_HTML``)."""
    return _fail_once(engine, replace(settings, max_attempts=1), day, region)


def backing_off_run(engine: Engine, settings: Settings, day: date, region: str) -> Run:
    """A run whose first signals attempt failed: DATA_READY, retried in 10 minutes."""
    return _fail_once(engine, replace(settings, retry_base=timedelta(minutes=10)), day, region)


def _fail_once(engine: Engine, settings: Settings, day: date, region: str) -> Run:
    run = ensure_run(engine, day, region, data_ready=True, actor="setup")
    step = advance_run(engine, run, settings=replace(settings, phase_tasks=web_tasks.__name__))
    assert step.run is not None and step.error is not None, step
    return step.run


def deaf_reactor(
    reactors: ReactorThreads, settings: Settings, engine: Engine, *, listen_url: str
) -> RunningReactor:
    """A reactor whose listener cannot hear, for real: it LISTENs in another database
    (``listen_url``), where the proof it sends through its work connections never
    arrives; returned once its heartbeat says so (after the proof's 5 s deadline)."""
    running = reactors.start(
        replace(
            settings,
            listen_url=listen_url,
            sweep_interval=timedelta(hours=1),
            heartbeat_interval=timedelta(seconds=0.2),
        )
    )

    def heard_deaf() -> bool:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT listener_hears IS FALSE FROM reactor_heartbeats"
                        " WHERE reactor_id = :reactor_id"
                    ),
                    {"reactor_id": running.reactor_id},
                ).scalar()
            )

    wait_until(heard_deaf, timeout=30, what="the reactor's heartbeat saying its listener is deaf")
    return running


def csrf_from(client: TestClient, run_id: int, action: str) -> str:
    """Open the action's confirmation page as the user would; its form's token."""
    page = client.get(f"/runs/{run_id}/{action}", auth=AUTH)
    assert page.status_code == 200, page.text
    match = _CSRF.search(page.text)
    assert match, "the confirmation page carries a CSRF token"
    return match.group(1)
