"""The console's pages over HTTP (Starlette's test client) on the real test database:
what each page shows, the filters and paging of the runs list, escaping, and that no
secret reaches a page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, timedelta
from html import unescape

import pytest
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.conninfo import ConnInfo
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, get_or_create_run, run_events
from prometheus.web.app import create_app
from tests.support import web_tasks
from tests.support.console import (
    AUTH,
    PASSWORD,
    backing_off_run,
    deaf_reactor,
    failed_run,
    recent_sessions,
    run_in,
)
from tests.support.inprocess import ReactorThreads

_ROW = re.compile(r'<tr data-date="([\d-]+)">(.*?)</tr>', re.S)
_CELL = re.compile(r'<td class="cell[^"]*" data-region="(\w+)" data-phase="(\w*)">(.*?)</td>', re.S)


def cells(html: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(region, date) -> (phase or "", the cell's text) for every grid cell."""
    return {
        (region, day): (phase, " ".join(re.sub(r"<[^>]+>", " ", body).split()))
        for day, row in _ROW.findall(html)
        for region, phase, body in _CELL.findall(row)
    }


def test_overview_shows_each_session_by_region_with_phase_attempts_duration_and_missing(
    client: TestClient, engine: Engine, settings: Settings, calendar: TradingCalendar
) -> None:
    us = recent_sessions(calendar, "US", 3)
    done = ensure_run(engine, us[0], "US", data_ready=True, actor="setup")
    done = run_in(engine, done.as_of_date, "US", Phase.COMPLETED)
    backing_off = backing_off_run(engine, settings, us[1], "US")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO region_datasets VALUES ('US', 'prices'), ('US', 'fundamentals')")
        )
        conn.execute(
            text(
                "INSERT INTO ingestion_batches (dataset, as_of_date, region, status)"
                " VALUES ('prices', :day, 'US', 'COMPLETE')"
            ),
            {"day": us[2]},
        )
    get_or_create_run(engine, us[2], "US")

    page = client.get("/", params={"sessions": 60})
    assert page.status_code == 200
    grid = cells(page.text)

    phase, shown = grid[("US", us[0].isoformat())]
    assert (phase, shown.split()[0]) == ("COMPLETED", "COMPLETED")  # text, not colour only
    assert re.search(r"\d", shown), f"a duration is shown: {shown!r}"
    phase, shown = grid[("US", us[1].isoformat())]
    assert phase == "DATA_READY"
    assert "1 failed attempt" in shown and "retry in 9m" in shown, shown
    assert backing_off.attempts == 1
    phase, shown = grid[("US", us[2].isoformat())]
    assert phase == "WAITING_FOR_DATA"
    assert "waiting for fundamentals" in shown and "prices" not in shown, shown


def test_overview_rows_are_sessions_and_a_closed_exchange_reads_closed(
    client: TestClient, calendar: TradingCalendar
) -> None:
    page = client.get("/", params={"sessions": 60})
    grid = cells(page.text)
    days = sorted({date.fromisoformat(d) for _, d in grid}, reverse=True)
    assert len(days) == 60
    trading = {
        region: {s.date for s in calendar.sessions(region, days[-1], days[0])}
        for region in calendar.regions
    }
    assert all(any(day in trading[r] for r in calendar.regions) for day in days)
    closed = {key for key, (_, shown) in grid.items() if shown == "closed"}
    expected = {(r, d.isoformat()) for r in calendar.regions for d in days if d not in trading[r]}
    assert expected, "sixty sessions of four exchanges always include a holiday of one"
    assert closed == expected
    no_run = {key for key, (_, shown) in grid.items() if shown == "no run"}
    assert no_run == set(grid) - closed


def test_overview_lists_check_problems_and_reactors(
    client: TestClient, engine: Engine, settings: Settings, calendar: TradingCalendar
) -> None:
    day = recent_sessions(calendar, "US", 1)[0]
    failed = failed_run(engine, settings, day, "US")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reactor_heartbeats"
                " (reactor_id, host, pid, last_seen_at, listener_hears, listener_problem)"
                " VALUES ('host-a:1:live', 'host-a', 1, now(), false, 'a standby'),"
                "        ('host-b:2:quiet', 'host-b', 2, now() - interval '10 minutes',"
                "         NULL, NULL)"
            )
        )
    page = client.get("/").text
    problems = page[page.index('aria-label="check"') : page.index('aria-label="reactors"')]
    assert "FAILURES" in problems and f"run {failed.run_id} {day.isoformat()} US" in problems
    reactors = page[page.index('aria-label="reactors"') : page.index('aria-label="sessions"')]
    row = re.compile(r'<tr class="reactor reactor-(\w+)">\s*<td class="mono">([^<]+)')
    rows = dict(row.findall(reactors))
    assert rows == {"live": "host-a:1:live", "silent": "host-b:2:quiet"}
    assert "10m" in reactors  # the quiet one's heartbeat age
    assert "not reported" in reactors  # the quiet one never proved its listener
    assert 'title="a standby">deaf (polling)' in reactors  # the live one's is deaf


def test_run_page_shows_timeline_error_in_full_batches_and_next_retry(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    day = date(2026, 11, 24)
    run = backing_off_run(engine, settings, day, "JP")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO region_datasets VALUES ('JP', 'prices'), ('JP', 'fx')"))
        conn.execute(
            text(
                "INSERT INTO ingestion_batches (dataset, as_of_date, region, status, row_count)"
                " VALUES ('prices', :day, 'JP', 'RUNNING', 12), ('extra', :day, 'JP', 'FAILED', 0)"
            ),
            {"day": day},
        )
    page = client.get(f"/runs/{run.run_id}")
    assert page.status_code == 200
    body = page.text
    assert unescape(web_tasks.ERROR_HTML) in unescape(body)  # last_error, in full
    assert run.next_attempt_at is not None
    assert run.next_attempt_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") in body
    assert "in 9m" in body
    timeline = body[body.index('aria-label="timeline"') : body.index('aria-label="batches"')]
    kinds = re.findall(r'<tr class="event event-(\w+)">', timeline)
    assert kinds == [e.kind for e in run_events(engine, run.run_id)]
    assert kinds == ["transition", "transition", "attempt_failed"]
    assert "setup" in timeline and "where=" in timeline and "retry_in_s=" in timeline
    batches = body[body.index('aria-label="batches"') :]
    assert re.search(r"<td>fx</td>\s*<td>yes</td>\s*<td>no batch yet</td>", batches)
    assert re.search(r"<td>prices</td>\s*<td>yes</td>\s*<td>RUNNING</td>\s*<td>12</td>", batches)
    assert re.search(r"<td>extra</td>\s*<td>no</td>\s*<td>FAILED</td>", batches)


def test_run_page_of_an_unknown_run_is_404(client: TestClient) -> None:
    page = client.get("/runs/987654")
    assert page.status_code == 404
    assert "no run 987654" in page.text


def test_text_from_the_database_is_escaped_everywhere(
    client: TestClient, engine: Engine, settings: Settings, calendar: TradingCalendar
) -> None:
    day = recent_sessions(calendar, "US", 1)[0]
    run = failed_run(engine, settings, day, "US")
    assert run.last_error is not None and web_tasks.ERROR_HTML in run.last_error
    for path in (f"/runs/{run.run_id}", "/runs", "/"):
        body = client.get(path).text
        assert "<script>document.title" not in body, path
        assert "<b>bold</b>" not in body, path
    run_page = client.get(f"/runs/{run.run_id}").text
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in run_page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in run_page


def test_runs_list_filters_are_kept_in_the_url_and_paged(
    client: TestClient, engine: Engine
) -> None:
    start = date(2026, 1, 1)
    for offset in range(60):
        run_in(engine, start + timedelta(days=offset), "EU", Phase.COMPLETED)
    for offset in range(5):
        run_in(engine, start + timedelta(days=offset), "JP", Phase.FAILED)
    run_in(engine, start, "UK", Phase.COMPLETED)

    first = client.get("/runs", params={"phase": "COMPLETED", "region": "eu"})
    assert first.status_code == 200
    rows = re.findall(r'<tr data-run-id="(\d+)">', first.text)
    assert len(rows) == 50
    assert "60 runs; page 1 of 2" in first.text
    assert 'option value="COMPLETED" selected' in first.text
    assert 'option value="EU" selected' in first.text
    older = re.search(r'<a rel="next" href="([^"]+)"', first.text)
    assert older is not None
    second = client.get(unescape(older.group(1)))
    assert "phase=COMPLETED" in older.group(1) and "region=EU" in older.group(1)
    assert len(re.findall(r'<tr data-run-id="(\d+)">', second.text)) == 10
    assert "page 2 of 2" in second.text

    ranged = client.get("/runs", params={"from": "2026-01-03", "to": "2026-01-04"}).text
    shown = re.findall(r"<td>(2026-\d\d-\d\d)</td>\s*<td>(\w+)</td>", ranged)
    assert sorted(shown) == [
        ("2026-01-03", "EU"),
        ("2026-01-03", "JP"),
        ("2026-01-04", "EU"),
        ("2026-01-04", "JP"),
    ]
    failed = client.get("/runs", params={"phase": "failed"}).text
    assert "5 runs" in failed


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"phase": "DONE"}, "unknown phase &#39;DONE&#39;"),
        ({"region": "MARS"}, "unknown region &#39;MARS&#39;"),
        ({"from": "2026-13-01"}, "expected a date as YYYY-MM-DD"),
        ({"page": "0"}, "page must be between 1 and"),
        ({"page": "two"}, "page must be a whole number"),
    ],
)
def test_runs_list_refuses_bad_filters_with_400(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    page = client.get("/runs", params=params)
    assert page.status_code == 400
    assert message in page.text


def test_htmx_refresh_gets_the_live_region_only(client: TestClient) -> None:
    whole = client.get("/runs")
    part = client.get("/runs", headers={"HX-Request": "true"})
    assert whole.text.lstrip().startswith("<!doctype html>")
    assert "<html" not in part.text and "<h1>Runs</h1>" in part.text
    assert part.headers["vary"] == "HX-Request" and part.headers["cache-control"] == "no-store"
    assert 'hx-trigger="live from:body, every 30s"' in whole.text


def test_assets_are_served_by_the_console_itself(client: TestClient) -> None:
    page = client.get("/").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "/static/htmx.min.js" in sources and "/static/live.js" in sources
    assert not [s for s in sources if "//" in s], "no CDN, no other origin"
    htmx = client.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and "javascript" in htmx.headers["content-type"]
    assert 'version:"2.0.11"' in htmx.text
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_no_dsn_or_password_on_any_page(
    server_url: str, db_url: str, engine: Engine, settings: Settings, reactors: ReactorThreads
) -> None:
    # The test server trusts local connections, so a password in the URL is accepted
    # (and ignored): any page that printed the DSN would show it.
    url = db_url.replace("postgres@", "postgres:db-pa55word@", 1)
    assert url != db_url
    web_settings = replace(
        settings, database_url=url, web_user="alice", web_password="web-pa55word"
    )
    run = failed_run(engine, settings, date(2026, 11, 24), "US")
    deaf = deaf_reactor(reactors, settings, engine, listen_url=server_url)
    server = ConnInfo.parse(server_url, name="the server")
    database = db_url.rsplit("/", 1)[-1]
    secrets = [
        "db-pa55word",
        "web-pa55word",
        database,
        server_url,
        deaf.reactor.settings.redacted_listen_dsn(),
        f"{server.hosts[0]}:{server.ports[0]}",  # the listen URL's server, in any form
        f"port {server.ports[0]}",
    ]
    with TestClient(create_app(web_settings)) as client:
        pages = [
            client.get("/"),
            client.get("/runs"),
            client.get(f"/runs/{run.run_id}"),
            client.get(f"/runs/{run.run_id}/retry", auth=("alice", "web-pa55word")),
            client.get("/runs/0"),
        ]
    overview = pages[0].text
    assert "deaf (polling)" in overview and "LISTENER_DEAF" in overview  # shown, and why
    assert "did not arrive within" in overview
    # A database the console cannot reach: libpq's text names its host, port and user.
    away = "postgresql://opsuser:db-pa55word@127.0.0.1:9/opsdb"  # the discard port: refused
    with TestClient(create_app(replace(web_settings, database_url=away))) as client:
        unavailable = client.get("/")
    assert unavailable.status_code == 503
    assert "the database is not available" in unavailable.text
    for page in [*pages, unavailable]:
        assert page.status_code in (200, 404, 503)
        for secret in (*secrets, "opsuser", "opsdb", "127.0.0.1", "port 9"):
            assert secret not in page.text, (page.url, secret)


def test_mounted_inside_another_app_links_stay_under_its_prefix(
    web_settings: Settings, engine: Engine
) -> None:
    run = run_in(engine, date(2026, 11, 24), "US", Phase.FAILED)
    console = create_app(web_settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await console.state.console.aclose()  # a mounted app's own lifespan does not run

    host = Starlette(routes=[Mount("/ops", app=console)], lifespan=lifespan)
    with TestClient(host) as client:
        page = client.get(f"/ops/runs/{run.run_id}")
        assert page.status_code == 200
        links = re.findall(r'(?:src|href)="(/[^"]*)"', page.text)
        assert links and all(link.startswith("/ops/") for link in links), links
        assert f'href="/ops/runs/{run.run_id}/retry"' in page.text
        assert 'data-events="/ops/events"' in page.text
        confirm = client.get(f"/ops/runs/{run.run_id}/retry", auth=AUTH)
        assert f'action="/ops/runs/{run.run_id}/retry"' in confirm.text
        assert "Path=/ops" in confirm.headers["set-cookie"]


def test_behind_a_proxy_with_a_root_path(web_settings: Settings) -> None:
    with TestClient(create_app(web_settings), root_path="/console") as client:
        page = client.get("/runs")
        assert page.status_code == 200
        assert 'href="/console/static/style.css"' in page.text
        assert PASSWORD not in page.text
