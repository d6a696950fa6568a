"""The console in a real browser: live updates without a reload while a real reactor
works, an action taken through the UI, and a read-only console that offers nothing and
refuses a forged POST."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings, libpq_url
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, get_or_create_run, get_run, run_events
from tests.support import held_tasks
from tests.support.console import ACTOR, failed_run, recent_sessions
from tests.support.inprocess import ReactorThreads

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.fixture
def held(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Holds both of ``held_tasks``' locks: a run's signals and universes phases wait
    until the test unlocks them (the session ends with the test, and so do the locks)."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        for key in (held_tasks.HELD_SIGNALS, held_tasks.HELD_UNIVERSES):
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield conn


def test_the_overview_follows_a_run_to_completed_without_a_reload(
    console: str,  # before page: the browser closes first, then the server stops
    page: Page,
    engine: Engine,
    settings: Settings,
    reactors: ReactorThreads,
    calendar: TradingCalendar,
    held: psycopg.Connection[tuple[object, ...]],
) -> None:
    from playwright.sync_api import expect

    day = recent_sessions(calendar, "US", 1)[0]
    run = get_or_create_run(engine, day, "US")
    reactor = reactors.start(replace(settings, phase_tasks=held_tasks.__name__))
    reactor.wait_ready()

    page.goto(f"{console}/")
    cell = page.locator(f'tr[data-date="{day.isoformat()}"] td.cell[data-region="US"]')
    expect(cell).to_have_attribute("data-phase", "WAITING_FOR_DATA")
    expect(page.locator("#live-status")).to_have_text("live")
    page.evaluate("window.notReloaded = true")

    ensure_run(engine, day, "US", data_ready=True, actor="test")  # announced: NOTIFY
    expect(cell).to_have_attribute("data-phase", "DATA_READY")
    # From here the reactor steps the run itself: SIGNALS_DONE is announced to nobody
    # (the run waits there for the second lock), and the page shows it all the same.
    held.execute("SELECT pg_advisory_unlock(%s)", (held_tasks.HELD_SIGNALS,))
    expect(cell).to_have_attribute("data-phase", "SIGNALS_DONE")
    expect(cell.locator(".phase-text")).to_have_text("SIGNALS_DONE")
    held.execute("SELECT pg_advisory_unlock(%s)", (held_tasks.HELD_UNIVERSES,))
    expect(cell).to_have_attribute("data-phase", "COMPLETED")
    expect(cell.locator(".phase-text")).to_have_text("COMPLETED")
    assert page.evaluate("window.notReloaded") is True
    finished = get_run(engine, run.run_id)
    assert finished is not None and finished.phase is Phase.COMPLETED


def test_retrying_a_failed_run_through_the_ui_moves_it_and_writes_the_event(
    console: str, page: Page, engine: Engine, settings: Settings
) -> None:
    from playwright.sync_api import expect

    run = failed_run(engine, settings, date(2026, 11, 24), "US")
    page.goto(f"{console}/runs/{run.run_id}")
    expect(page.locator("#run-phase")).to_have_text("FAILED")
    page.get_by_role("link", name="Retry…").click()
    page.get_by_label("Reason").fill("prices restated by the vendor")
    page.get_by_role("button", name=f"Confirm: retry run {run.run_id}").click()

    expect(page.locator(".flash")).to_contain_text("Retry recorded in the audit trail")
    expect(page.locator("#run-phase")).to_have_text("DATA_READY")
    row = page.locator("tr.event").last
    expect(row).to_contain_text(ACTOR)
    expect(row).to_contain_text("prices restated by the vendor")
    moved = get_run(engine, run.run_id)
    assert moved is not None and moved.phase is Phase.DATA_READY
    last = run_events(engine, run.run_id)[-1]
    assert (last.from_phase, last.to_phase, last.actor) == ("FAILED", "DATA_READY", ACTOR)
    assert last.detail["reason"] == "prices restated by the vendor"


def test_a_read_only_console_has_no_action_buttons_and_refuses_a_forged_post(
    read_only_console: str, page: Page, engine: Engine, settings: Settings
) -> None:
    from playwright.sync_api import expect

    run = failed_run(engine, settings, date(2026, 11, 24), "US")
    before = run_events(engine, run.run_id)
    page.goto(f"{read_only_console}/runs/{run.run_id}")
    expect(page.locator("#run-phase")).to_have_text("FAILED")
    expect(page.locator(".mode")).to_have_text("read-only")
    assert page.locator(".actions a, form[method=post], button").count() == 0
    status = page.evaluate(
        """async (url) => {
            const body = new URLSearchParams({csrf_token: "forged", reason: "forged"});
            const response = await fetch(url, {method: "POST", body, credentials: "include"});
            return response.status;
        }""",
        f"{read_only_console}/runs/{run.run_id}/retry",
    )
    assert status == 403
    assert run_events(engine, run.run_id) == before
    still = get_run(engine, run.run_id)
    assert still is not None and still.phase is Phase.FAILED
