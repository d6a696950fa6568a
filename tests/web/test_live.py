"""The live view's feed, for real: uvicorn serving the console, server-sent event streams
read over HTTP, the LISTEN connection seen in pg_stat_activity, NOTIFY and polling."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text

from prometheus.calendar import TradingCalendar
from prometheus.checks import CheckPolicy
from prometheus.config import Settings, libpq_url
from prometheus.db.connect import make_engine
from prometheus.ingestion.batches import BatchKey, BatchStatus, mark_batches
from prometheus.ingestion.datasets import require_datasets
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import get_or_create_run, update_phase
from prometheus.web.app import create_app
from prometheus.web.feed import LISTENER_NAME, ChangeFeed
from prometheus.web.reads import Reader
from prometheus.web.server import running_server
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)


class EventStream:
    """One browser's ``EventSource``: a real HTTP connection, read by a thread of its own
    into a queue, so that waiting for an event has a deadline."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self.conn.request("GET", "/events", headers={"Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.headers["content-type"].startswith("text/event-stream")
        assert self.conn.sock is not None
        self.conn.sock.settimeout(None)  # the reader blocks; close() ends it
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, name="sse-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        event, data = "message", ""
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            while line := self.response.readline().decode():
                line = line.rstrip("\r\n")
                field, _, value = line.partition(":")
                if not line:
                    if data or event != "message":
                        self.events.put((event, data))
                    event, data = "message", ""
                elif field == "event":
                    event = value.strip()
                elif field == "data":
                    data = value.strip()

    def wait_for(
        self, name: str, *, timeout: float = 20.0, until: Callable[[str], bool] | None = None
    ) -> str:
        """The data of the next ``name`` event (for which ``until`` holds, if given)."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event, data = self.events.get(timeout=remaining)
            except queue.Empty:
                break
            if event == name and (until is None or until(data)):
                return data
        raise AssertionError(f"no {name!r} event as expected within {timeout}s")

    def close(self) -> None:
        sock = self.conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the reader sees the end and returns
        self.reader.join(10)
        self.conn.close()


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    with running_server(create_app(settings)) as base_url:
        yield base_url


@pytest.fixture
def streams(served: str) -> Iterator[list[EventStream]]:
    opened: list[EventStream] = []
    yield opened
    for stream in opened:
        stream.close()


def listeners(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name LIKE :name"
                ),
                {"name": f"{LISTENER_NAME}:%"},
            ).scalars()
        )


def newest_event_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT max(event_id) FROM engine_run_events")).scalar_one())


def test_one_listen_connection_feeds_every_watching_browser(
    served: str, streams: list[EventStream], engine: Engine
) -> None:
    for _ in range(4):
        stream = EventStream(served)
        stream.wait_for("ready")
        streams.append(stream)
    wait_until(lambda: len(listeners(engine)) == 1, what="the console's LISTEN connection")
    get_or_create_run(engine, DAY, "US")  # notifies on prometheus_engine_runs
    for stream in streams:
        stream.wait_for("change")
    assert len(listeners(engine)) == 1


def test_a_step_that_notifies_nobody_still_reaches_the_browsers(
    served: str, streams: list[EventStream], engine: Engine
) -> None:
    run = get_or_create_run(engine, DAY, "US")
    run = update_phase(engine, run, Phase.DATA_READY, actor="setup")
    stream = EventStream(served)
    streams.append(stream)
    stream.wait_for("ready")
    wait_until(lambda: listeners(engine), what="the LISTEN connection")
    stream.wait_for("change")  # what it found on connecting: all caught up from here
    # As a reactor stepping its own run: the phase change commits without a NOTIFY.
    update_phase(engine, run, Phase.SIGNALS_DONE, actor="reactor", notify=False)
    target = newest_event_id(engine)
    stream.wait_for("change", until=lambda version: version.startswith(f"{target}:"))


def test_the_listener_reconnects_after_its_connection_is_killed(
    served: str, streams: list[EventStream], engine: Engine
) -> None:
    stream = EventStream(served)
    streams.append(stream)
    stream.wait_for("ready")
    [first] = wait_until(lambda: listeners(engine), what="the LISTEN connection")
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    wait_until(lambda: listeners(engine) not in ([], [first]), what="a new LISTEN connection")
    assert len(listeners(engine)) == 1
    get_or_create_run(engine, DAY, "EU")
    stream.wait_for("change")


def test_a_closed_stream_is_forgotten(settings: Settings) -> None:
    app = create_app(settings)
    with running_server(app) as base_url:
        stream = EventStream(base_url)
        stream.wait_for("ready")
        feed = app.state.console.feed
        assert feed.subscribers == 1
        stream.close()
        wait_until(lambda: feed.subscribers == 0, what="the closed stream unsubscribed")


def _reader(settings: Settings) -> Reader:
    assert settings.database_url is not None
    engine = make_engine(settings.database_url, application_name="tests-web-feed", pool_size=2)
    return Reader(engine, TradingCalendar(), CheckPolicy())


def test_polling_keeps_pages_current_when_listen_cannot_connect(
    settings: Settings, engine: Engine
) -> None:
    reader = _reader(settings)
    unreachable = "postgresql://postgres@127.0.0.1:9/nowhere"  # the discard port: refused

    async def scenario() -> str:
        feed = ChangeFeed(unreachable, reader.version, poll_interval=0.2)
        queue = feed.subscribe()
        try:
            first = await asyncio.wait_for(queue.get(), 20)
            await asyncio.to_thread(get_or_create_run, engine, DAY, "UK")
            while (version := await asyncio.wait_for(queue.get(), 20)) == first:
                pass
            assert not feed.listening
            return str(version)
        finally:
            await feed.aclose()

    try:
        version = asyncio.run(scenario())
    finally:
        reader.engine.dispose()
    assert int(version.split(":")[0]) == newest_event_id(engine)


def test_with_listen_down_the_poll_alone_shows_datasets_arriving_for_a_waiting_run(
    settings: Settings, engine: Engine
) -> None:
    """A batch that completes (or fails) while its run still waits for another dataset
    writes no audit event; the version the poll reads moves all the same, so the page
    showing the run's missing datasets refreshes without LISTEN."""
    require_datasets(engine, "US", ["fundamentals", "prices"])
    get_or_create_run(engine, DAY, "US")
    reader = _reader(settings)
    unreachable = "postgresql://postgres@127.0.0.1:9/nowhere"  # the discard port: refused

    def write_batch(status: BatchStatus) -> None:
        with engine.begin() as conn:
            mark_batches(conn, [BatchKey("prices", DAY, "US")], status)

    async def next_version(queue: asyncio.Queue[str | None], after: str) -> str:
        while (version := await asyncio.wait_for(queue.get(), 10)) == after:
            pass
        assert version is not None
        return version

    async def scenario() -> list[str]:
        feed = ChangeFeed(unreachable, reader.version, poll_interval=0.2)
        queue = feed.subscribe()
        try:
            seen = [str(await asyncio.wait_for(queue.get(), 20))]
            for status in (BatchStatus.RUNNING, BatchStatus.COMPLETE, BatchStatus.FAILED):
                events_before = newest_event_id(engine)
                await asyncio.to_thread(write_batch, status)
                assert newest_event_id(engine) == events_before  # nothing but the batch
                seen.append(await next_version(queue, seen[-1]))
            assert not feed.listening
            return seen
        finally:
            await feed.aclose()

    try:
        versions = asyncio.run(scenario())
    finally:
        reader.engine.dispose()
    assert len(set(versions)) == 4, versions


def test_a_burst_of_notifications_is_debounced_into_few_checks(
    settings: Settings, db_url: str
) -> None:
    """30 notifications in separate commits, 20 ms apart. Debounced, every check the burst
    causes comes a whole debounce window after the notification that set it off (the
    first one no earlier than the first notification's send plus the window) and after
    the check before it: the burst costs about one check per window, not one each. The
    bounds hold however slow the machine is; without the debounce, the first check
    follows the first notification within milliseconds and checks come 20 ms apart."""
    debounce = 0.3
    slack = 0.01  # the event loop may fire a timer up to its clock's resolution early
    reader = _reader(settings)
    reads: list[float] = []
    sent: list[float] = []

    def counted_version() -> str:
        reads.append(time.monotonic())
        return reader.version()

    def burst() -> None:
        with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
            for index in range(30):
                payload = f'{{"run_id": {index + 1}, "phase": "DATA_READY"}}'
                sent.append(time.monotonic())
                conn.execute(
                    sql.SQL("NOTIFY {}, {}").format(
                        sql.Identifier("prometheus_engine_runs"), sql.Literal(payload)
                    )
                )
                time.sleep(0.02)

    async def scenario() -> list[float]:
        assert settings.database_url is not None
        # No polling to speak of: every check here is one a notification asked for.
        feed = ChangeFeed(
            settings.database_url, counted_version, poll_interval=600, debounce=debounce
        )
        queue = feed.subscribe()
        try:
            await asyncio.wait_for(queue.get(), 20)  # the check made on connecting
            started = len(reads)
            await asyncio.to_thread(burst)
            deadline = time.monotonic() + 20
            while not (reads and reads[-1] > sent[-1]):  # the burst's end was seen
                assert time.monotonic() < deadline, "no check after the last notification"
                await asyncio.sleep(0.05)
            return reads[started:]
        finally:
            await feed.aclose()

    try:
        checks = asyncio.run(scenario())
    finally:
        reader.engine.dispose()
    assert checks, "the burst caused no check"
    assert checks[0] >= sent[0] + debounce - slack, "a check before the window ended"
    gaps = [later - earlier for earlier, later in itertools.pairwise(checks)]
    assert all(gap >= debounce - slack for gap in gaps), gaps


def test_the_console_listens_where_prometheus_listen_url_says(
    settings: Settings, server_url: str, engine: Engine
) -> None:
    # LISTEN is per database: a listen URL naming the server's admin database puts the
    # console's listener there, while its pages still read the test database.
    admin = server_url.rsplit("/", 1)[-1].split("?")[0]
    app = create_app(replace(settings, listen_url=server_url))
    with running_server(app) as base_url:
        stream = EventStream(base_url)
        try:
            stream.wait_for("ready")
            feed = app.state.console.feed

            def where() -> list[str]:
                with engine.connect() as conn:
                    return list(
                        conn.execute(
                            text(
                                "SELECT datname FROM pg_stat_activity"
                                " WHERE application_name = :name"
                            ),
                            {"name": feed.application_name},
                        ).scalars()
                    )

            assert wait_until(where, what="the console's listener") == [admin]
            get_or_create_run(engine, DAY, "JP")
            stream.wait_for("change")  # the poll still reads the test database
        finally:
            stream.close()
