"""LISTEN on a dedicated connection; turn notifications into work for the dispatcher.

The connection is autocommit and does nothing but listen, so a long phase never delays
a notification. Every (re)connect goes: connect, LISTEN, check ``pg_listening_channels()``,
*then* ask for a sweep, then consume: whatever was notified while nobody listened is
found by that sweep. Losing the connection schedules a reconnect with capped, jittered
exponential backoff; a silence longer than the ping interval is probed with ``SELECT 1``
so a half-open link is found by the listener, not by the next phase. The probe has a
deadline of its own: TCP's timeouts never fire when the far end still acknowledges
(a hung proxy or middlebox, a stopped server), and a plain execute would wait forever.
"""

from __future__ import annotations

import selectors
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from psycopg import pq, sql

from prometheus.db.connect import connect_listener
from prometheus.errors import first_line
from prometheus.logs import get_logger
from prometheus.orchestration.dispatcher import Dispatcher
from prometheus.orchestration.metrics import ReactorMetrics
from prometheus.orchestration.notifications import (
    Channel,
    DataArrived,
    MalformedPayload,
    parse_notification,
)
from prometheus.orchestration.services import Backoff
from prometheus.pipeline.phases import WORKABLE

log = get_logger(__name__)

POLL_SECONDS = 0.5  # how often the loop looks at the stop flag while idle
PING_AFTER_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 10.0  # a SELECT 1 on an idle backend answers in well under 1 ms


class Listener:
    def __init__(
        self,
        database_url: str,
        *,
        reactor_id: str,
        dispatcher: Dispatcher,
        metrics: ReactorMetrics,
        on_connected: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        self._url = database_url
        self._reactor_id = reactor_id
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._on_connected = on_connected
        self._stop = stop
        self._backoff = Backoff()
        self.connected = threading.Event()
        self.last_notification: float | None = None  # time.time()
        self.thread = threading.Thread(target=self._run, name="listener", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(reactor_id=self._reactor_id)
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    self._backoff.reset()
                    self._consume(conn)
            except psycopg.Error as exc:
                self.connected.clear()
                self._metrics.reconnects.inc()
                delay = self._backoff.next_delay()
                log.warning(
                    "listener.reconnect_scheduled", delay_s=round(delay, 3), error=first_line(exc)
                )
                self._stop.wait(delay)
        self.connected.clear()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect_listener(
            self._url, application_name=f"prometheus-listener:{self._reactor_id}"[:63]
        )
        try:
            for channel in Channel:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            listening = {row[0] for row in conn.execute("SELECT pg_listening_channels()")}
            missing = {str(c) for c in Channel} - listening
            if missing:
                raise psycopg.OperationalError(f"LISTEN did not take: {sorted(missing)}")
        except BaseException:
            conn.close()
            raise
        self.connected.set()
        log.info("listener.connected", channels=sorted(listening))
        self._on_connected()
        return conn

    def _consume(self, conn: psycopg.Connection[Any]) -> None:
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            for notify in conn.notifies(timeout=POLL_SECONDS):
                self._handle(notify.channel, notify.payload)
                quiet_since = time.monotonic()
                if self._stop.is_set():
                    return
            if time.monotonic() - quiet_since > PING_AFTER_SECONDS:
                for channel, payload in _ping(conn, PING_TIMEOUT_SECONDS):
                    self._handle(channel, payload)
                quiet_since = time.monotonic()

    def _handle(self, channel: str, payload: str) -> None:
        received = time.monotonic()
        self.last_notification = time.time()
        self._metrics.notifications.labels(channel).inc()
        try:
            event = parse_notification(channel, payload)
        except MalformedPayload as exc:
            self._metrics.malformed.labels(channel).inc()
            log.warning(
                "notification.malformed", channel=channel, error=str(exc), payload=payload[:200]
            )
            return
        if isinstance(event, DataArrived) or event.phase in WORKABLE:
            # A run created WAITING_FOR_DATA or turned terminal needs no advance; every
            # later phase change notifies again (or is made by a reactor that keeps
            # stepping the run itself), so skipping it loses nothing.
            self._dispatcher.wake(notified_at=received)


def _ping(conn: psycopg.Connection[Any], timeout: float) -> list[tuple[str, str]]:
    """``SELECT 1``, waiting at most ``timeout`` for the answer (OperationalError if none
    comes); return the notifications that arrived meanwhile, as (channel, payload)."""
    pgconn = conn.pgconn
    pgconn.send_query(b"SELECT 1")
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(pgconn.socket, selectors.EVENT_READ)
        pgconn.consume_input()
        while pgconn.is_busy():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise psycopg.OperationalError(f"no answer to a ping within {timeout:g}s")
            selector.select(remaining)
            pgconn.consume_input()
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.TUPLES_OK:
            message = (result.error_message or b"").decode(errors="replace").strip()
            raise psycopg.OperationalError(f"ping failed: {message}")
    # consume_input moved them into libpq's queue, where conn.notifies() would not look
    # until more data arrives: hand them over now.
    encoding = conn.info.encoding
    return [
        (n.relname.decode(encoding), n.extra.decode(encoding)) for n in iter(pgconn.notifies, None)
    ]
