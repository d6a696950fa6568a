"""Regenerate the README's screenshots of the console:

    python -m tests.browser.screenshots [DIR]      (default: docs/)

A throw-away database on the test server (tests/support/servers.py) gets three weeks of
sessions for every region, made by the real engine with this module as its phase tasks:
most runs COMPLETED, one FAILED after three attempts, one backing off, the newest
sessions waiting for a dataset. The console is served in this process and Debian's
chromium takes the pictures, as in the browser tests.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import scratch_database
from prometheus.pipeline.context import TaskContext
from prometheus.pipeline.state import advance_run, ensure_run, get_or_create_run
from prometheus.web.app import create_app
from prometheus.web.server import running_server
from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS
from tests.support.console import PASSWORD, USER, with_login
from tests.support.servers import postgres_server

SESSIONS = 15
FAILING = ("EU", 3)  # (region, sessions back): the run whose signals keep failing
BACKING_OFF = ("UK", 2)
WAITING = 1  # the newest session of every region still waits for its fundamentals


class VendorFileTruncated(RuntimeError):
    """What the failing run's signals raise."""


def signals(ctx: TaskContext) -> None:
    if (ctx.region, ctx.as_of_date) in _troubled:
        raise VendorFileTruncated(
            f"no close price for 212 of 1,840 {ctx.region} instruments on "
            f"{ctx.as_of_date.isoformat()} (vendor file truncated at row 1,628)"
        )


def universes(ctx: TaskContext) -> None:
    """Nothing to build: the pictures show phases."""


def books(ctx: TaskContext) -> None:
    """Nothing to write."""


_troubled: set[tuple[str, date]] = set()


def seed(engine: Engine, settings: Settings, calendar: TradingCalendar) -> int:
    """Runs for the last sessions of every region; returns the FAILED run's id."""
    now = datetime.now(UTC)
    failed_id = 0
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO region_datasets (region, dataset)"
                " SELECT r, d FROM unnest(CAST(:regions AS text[])) r,"
                " unnest(ARRAY['prices', 'fundamentals']) d"
            ),
            {"regions": list(calendar.regions)},
        )
        conn.execute(
            text(
                "INSERT INTO reactor_heartbeats"
                " (reactor_id, host, pid, started_at, last_seen_at, stopped_at)"
                " VALUES ('ops-1:4121:9f2c', 'ops-1', 4121, now() - interval '3 days',"
                " now() - interval '4 seconds', NULL),"
                " ('ops-2:977:41aa', 'ops-2', 977, now() - interval '5 hours',"
                " now() - interval '4 hours', now() - interval '4 hours')"
            )
        )
    for region in calendar.regions:
        closed = calendar.closed_sessions(region, now, lookback=timedelta(days=40))
        days = [s.date for s in closed][-SESSIONS:]
        for back, day in enumerate(reversed(days)):
            if back < WAITING:
                _batch(engine, day, region, "prices")
                get_or_create_run(engine, day, region)
                continue
            if (region, back) == FAILING:
                _troubled.add((region, day))
                run = ensure_run(engine, day, region, data_ready=True, actor="ingest:prices")
                for _ in range(settings.max_attempts):
                    advance_run(
                        engine, run.run_id, settings=replace(settings, retry_base=timedelta(0))
                    )
                failed_id = run.run_id
                continue
            if (region, back) == BACKING_OFF:
                _troubled.add((region, day))
                run = ensure_run(engine, day, region, data_ready=True, actor="ingest:prices")
                advance_run(engine, run.run_id, settings=settings)
                continue
            run = ensure_run(engine, day, region, data_ready=True, actor="ingest:prices")
            while advance_run(engine, run.run_id, settings=settings).should_continue:
                pass
    return failed_id


def _batch(engine: Engine, day: date, region: str, dataset: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ingestion_batches"
                " (dataset, as_of_date, region, status, row_count, completed_at)"
                " VALUES (:dataset, :day, :region, 'COMPLETE', 1840, now())"
            ),
            {"dataset": dataset, "day": day, "region": region},
        )


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    out = Path(argv[0] if argv else "docs")
    out.mkdir(parents=True, exist_ok=True)
    calendar = TradingCalendar()
    with postgres_server() as server_url, scratch_database(server_url) as url:
        settings = Settings(database_url=url, phase_tasks=__name__, retry_base=timedelta(minutes=5))
        engine = make_engine(url, application_name="screenshots", pool_size=2)
        try:
            failed_id = seed(engine, settings, calendar)
        finally:
            engine.dispose()
        with running_server(create_app(with_login(settings))) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            context = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD},
                viewport={"width": 1280, "height": 1000},
            )
            page = context.new_page()
            for path, name in (
                (f"/?sessions={SESSIONS}", "overview"),
                (f"/runs/{failed_id}", "run"),
            ):
                page.goto(base + path)
                page.locator("#live-status.on").wait_for()
                target = out / f"web-{name}.png"
                page.screenshot(path=str(target))
                print(target)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
