"""The live view's source: one LISTEN connection and one poll per process, fanned out to
every browser watching through server-sent events.

Notifications alone are not enough: a reactor stepping its own run announces only its
arrival in COMPLETED or FAILED (``prometheus.notify = off`` for the steps between), so a
run moving DATA_READY -> SIGNALS_DONE -> UNIVERSES_DONE wakes nobody. So while anyone
watches, a cheap version row (``web_version``: the newest audit event id, the newest
batch write, the holds' and the reactor heartbeats' figures, read from keys) is polled
every ``poll_interval``; a notification asks for the same check at once, after
``debounce`` so that a burst of notifications costs one check and one refresh. Browsers
are told "something changed", never what: the page asks for its fresh fragment, and the
rows decide, as in the reactor.

If the LISTEN connection is down, the poll alone keeps pages current; nobody watching
means no polling at all. Everything here runs on the server's event loop: the listener
is psycopg's async connection, and the version read runs in Starlette's thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from prometheus.db.connect import connect_listener_async
from prometheus.errors import first_line
from prometheus.logs import get_logger
from prometheus.orchestration.notifications import Channel
from prometheus.orchestration.services import Backoff

log = get_logger(__name__)

POLL_INTERVAL_SECONDS = 1.0
DEBOUNCE_SECONDS = 0.2
PING_AFTER_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 10.0
LISTENER_NAME = "prometheus-web-listener"


class ChangeFeed:
    """Subscribers get the new version string each time what the pages show changes.

    Each subscriber's queue holds at most one pending change: a browser slower than the
    changes gets one refresh for all of them, never a backlog."""

    def __init__(
        self,
        database_url: str,
        read_version: Callable[[], str],
        *,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        debounce: float = DEBOUNCE_SECONDS,
    ) -> None:
        self._url = database_url
        self._read_version = read_version
        self._poll_interval = poll_interval
        self._debounce = debounce
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self._watched = asyncio.Event()  # someone subscribes
        self._notified = asyncio.Event()  # a notification arrived: check now
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = False
        self.application_name = f"{LISTENER_NAME}:{socket.gethostname()}:{os.getpid()}"[:63]

    def subscribe(self) -> asyncio.Queue[str | None]:
        """A queue of changes (None: the feed closed). Starts the feed on first use, in
        the running loop, so that a console mounted in another app (whose lifespan
        does not reach it) works too."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="web-listener"),
                asyncio.create_task(self._watch(), name="web-watch"),
            ]
            for task in self._tasks:
                task.add_done_callback(_report_crash)
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)
        self._subscribers.add(queue)
        self._watched.set()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self._subscribers.discard(queue)
        if not self._subscribers:
            self._watched.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def aclose(self) -> None:
        """Stop listening and polling; every open stream ends."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for queue in list(self._subscribers):
            while not queue.empty():  # the end must not be dropped for a full queue
                queue.get_nowait()
            queue.put_nowait(None)
        self.listening = False

    async def _watch(self) -> None:
        last: str | None = None
        while True:
            await self._watched.wait()
            notified = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._notified.wait()
                    notified = True
            if notified:
                await asyncio.sleep(self._debounce)  # let the rest of a burst arrive
                self._notified.clear()
            try:
                version = await run_in_threadpool(self._read_version)
            except (SQLAlchemyError, psycopg.Error) as exc:
                log.warning("web.poll_failed", error=first_line(exc))
                continue
            # A notification is news even when the version row looks the same: an id
            # taken by a transaction that committed after a later one's moves no maximum.
            if notified or version != last:
                last = version
                for queue in list(self._subscribers):
                    _offer(queue, version)

    async def _listen(self) -> None:
        backoff = Backoff()
        while True:
            try:
                conn = await connect_listener_async(
                    self._url, application_name=self.application_name
                )
                async with conn:
                    await self._start_listening(conn)
                    backoff.reset()
                    await self._consume(conn)
            except (psycopg.Error, TimeoutError) as exc:
                self.listening = False
                delay = backoff.next_delay()
                log.warning(
                    "web.listener_reconnect_scheduled",
                    delay_s=round(delay, 3),
                    error=first_line(exc),
                )
                await asyncio.sleep(delay)

    async def _start_listening(self, conn: psycopg.AsyncConnection[Any]) -> None:
        for channel in Channel:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        cursor = await conn.execute("SELECT pg_listening_channels()")
        listening = {row[0] for row in await cursor.fetchall()}
        missing = {str(c) for c in Channel} - listening
        if missing:
            raise psycopg.OperationalError(f"LISTEN did not take: {sorted(missing)}")
        self.listening = True
        log.info("web.listener_connected", channels=sorted(listening))
        self._notified.set()  # whatever changed while nobody listened

    async def _consume(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for _ in conn.notifies(timeout=PING_AFTER_SECONDS):
                self._notified.set()
            # A half-open link shows no error by itself: ask, with a deadline of our own.
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                await conn.execute("SELECT 1")


def _offer(queue: asyncio.Queue[str | None], item: str | None) -> None:
    """Put without waiting; a full queue already holds a change the browser has not
    taken, and one refresh covers both."""
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(item)


def _report_crash(task: asyncio.Task[None]) -> None:
    """Both loops only end by cancellation; anything else is a bug to say out loud (the
    pages still work, but the live view would silently stop)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("web.feed_crashed", task=task.get_name(), error=first_line(exc))
