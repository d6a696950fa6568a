"""LISTEN on a dedicated connection; turn notifications into work for the dispatcher.

The connection is autocommit and does nothing but listen, so a long phase never delays
a notification. Every (re)connect goes: connect, check that the server is a primary
(``pg_is_in_recovery()``: a standby cannot LISTEN), LISTEN, check
``pg_listening_channels()``, *then* ask for a sweep, then consume: whatever was notified
while nobody listened is found by that sweep. Losing the connection schedules a
reconnect with capped, jittered exponential backoff; a silence longer than the ping
interval is probed with ``SELECT 1`` so a half-open link is found by the listener, not by
the next phase. The probe has a deadline of its own: TCP's timeouts never fire when the
far end still acknowledges (a hung proxy or middlebox, a stopped server), and a plain
execute would wait forever.

A listener that LISTENs is not yet one that hears: through a transaction pooler
(PgBouncer ``pool_mode = transaction``) LISTEN succeeds, ``pg_listening_channels()`` may
even list the channels, and no notification ever arrives. So the listener proves it
hears, end to end: after each connect and then periodically, a notification on a
channel of its own is sent through a *work* connection (``prove``), and must arrive
within ``PROOF_TIMEOUT_SECONDS``. Until it does, and whenever it does not, the listener
is not ``hearing``: /healthz is degraded, one ``listener.deaf`` line says why and what to
set, and the reactor polls for due runs (the poll service) instead of waiting for the
sweep. The database itself skips the proof, as every notification of ours, while the
server's NOTIFY queue is past its limit (``prometheus_notify``): then the listener is deaf
for that reason at once.
"""

from __future__ import annotations

import secrets
import selectors
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from psycopg import pq, sql
from sqlalchemy import Engine

from prometheus.db.connect import connect_listener
from prometheus.db.driver import driver_sql
from prometheus.db.queries import query
from prometheus.errors import first_line
from prometheus.logs import get_logger
from prometheus.orchestration.dispatcher import Dispatcher
from prometheus.orchestration.metrics import ReactorMetrics
from prometheus.orchestration.notifications import (
    Channel,
    DataArrived,
    HoldsReleased,
    MalformedPayload,
    parse_notification,
)
from prometheus.orchestration.services import Backoff
from prometheus.pipeline.phases import WORKABLE

log = get_logger(__name__)

POLL_SECONDS = 0.5  # how often the loop looks at the stop flag while idle
PING_AFTER_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 10.0  # a SELECT 1 on an idle backend answers in well under 1 ms
PROOF_TIMEOUT_SECONDS = 5.0  # a notification arrives in milliseconds, or not at all
POOLER_HINT = (
    "LISTEN does not work through a transaction pooler (PgBouncer pool_mode = transaction):"
    " set PROMETHEUS_LISTEN_URL to a direct or session-pooled URL of the primary"
)
NOTIFY_QUEUE_PROBLEM = (
    "notifications are not being sent: the server's NOTIFY queue is fuller than"
    " prometheus.notify_queue_limit"
)
NOTIFY_QUEUE_HINT = (
    "a session that LISTENs and never reads (often idle in a transaction, on any database of"
    " the server) holds the queue: end it (pg_stat_activity; `prometheus check` reports"
    " NOTIFY_QUEUE)"
)
STANDBY_HINT = (
    "a standby cannot LISTEN: point PROMETHEUS_LISTEN_URL (or PROMETHEUS_DATABASE_URL) at"
    " the primary, or list every server and add target_session_attrs=read-write"
)


class CannotListen(psycopg.OperationalError):
    """Connected, but this connection cannot hear (a standby; LISTEN that did not take)."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


class Listener:
    def __init__(
        self,
        listen_url: str,
        *,
        shown_url: str,
        reactor_id: str,
        dispatcher: Dispatcher,
        metrics: ReactorMetrics,
        on_connected: Callable[[], None],
        on_deaf: Callable[[], None],
        poll_interval_s: float,
        stop: threading.Event,
    ) -> None:
        self._url = listen_url
        self._shown_url = shown_url  # redacted: the only form a log line may carry
        self._reactor_id = reactor_id
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._on_connected = on_connected
        self._on_deaf = on_deaf  # the poll service starts at once
        self._poll_interval_s = poll_interval_s
        self._stop = stop
        self._backoff = Backoff()
        # A channel of this listener's own, so its proofs wake no other reactor.
        self.probe_channel = f"prometheus_probe_{secrets.token_hex(6)}"
        self._lock = threading.Lock()
        self._expected: tuple[str, float] | None = None  # probe payload, monotonic deadline
        self.connected = threading.Event()
        self.hears: bool | None = None  # None: not proven yet on this connection
        self.problem: str | None = None  # why it cannot hear, while it cannot
        self.last_notification: float | None = None  # time.time()
        self.last_proof: float | None = None  # time.time() of the last proof that arrived
        self.thread = threading.Thread(target=self._run, name="listener", daemon=True)

    @property
    def hearing(self) -> bool:
        """Connected, and proven to receive what is notified: no need to poll."""
        return self.connected.is_set() and self.hears is True

    def start(self) -> None:
        self.thread.start()

    def expect_proof(self) -> str | None:
        """A fresh payload for the next proof (``prove`` sends it); None while not
        connected (a connect is followed by a proof anyway) or while a proof is still on
        its way (it arrives, or its deadline says the listener is deaf)."""
        if not self.connected.is_set():
            return None
        payload = secrets.token_hex(8)
        with self._lock:
            if self._expected is not None:
                return None
            self._expected = (payload, time.monotonic() + PROOF_TIMEOUT_SECONDS)
        return payload

    def cancel_proof(self) -> None:
        """The proof could not be sent (the database is away): nothing was proven either
        way, so nothing may be concluded from its absence."""
        with self._lock:
            self._expected = None

    def proof_skipped(self) -> None:
        """The database did not send the proof: every notification is skipped while the
        server's NOTIFY queue is past its limit, so none of ours can be heard now. Deaf,
        so the reactor polls, until a later proof is sent and arrives."""
        self.cancel_proof()
        self._deaf(NOTIFY_QUEUE_PROBLEM, NOTIFY_QUEUE_HINT)

    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(reactor_id=self._reactor_id)
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    self._backoff.reset()
                    self._consume(conn)
            except CannotListen as exc:
                self.connected.clear()
                self._metrics.reconnects.inc()
                self._deaf(exc.problem, exc.hint)
                self._stop.wait(self._backoff.next_delay())  # said once by _deaf
            except psycopg.Error as exc:
                self.connected.clear()
                self._metrics.reconnects.inc()
                delay = self._backoff.next_delay()
                log.warning(
                    "listener.reconnect_scheduled", delay_s=round(delay, 3), error=first_line(exc)
                )
                self._on_deaf()  # poll while it reconnects
                self._stop.wait(delay)
        self.connected.clear()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect_listener(
            self._url, application_name=f"prometheus-listener:{self._reactor_id}"[:63]
        )
        try:
            row = conn.execute(driver_sql(query("listener_in_recovery"))).fetchone()
            if row is not None and row[0]:
                raise CannotListen(
                    "the server it listens on is a standby (in recovery)", STANDBY_HINT
                )
            channels = [*Channel, self.probe_channel]
            for channel in channels:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            listening = {row[0] for row in conn.execute(driver_sql(query("listener_channels")))}
            missing = {str(c) for c in channels} - listening
            if missing:
                raise CannotListen(f"LISTEN did not take: {sorted(missing)}", POOLER_HINT)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._expected = None
        if self.hears:
            self.hears = None  # a new connection proves itself anew (deaf stays deaf)
        self.connected.set()
        log.info("listener.connected", channels=sorted(str(c) for c in Channel))
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
            self._check_proof_deadline()

    def _check_proof_deadline(self) -> None:
        with self._lock:
            expired = self._expected is not None and time.monotonic() > self._expected[1]
            if expired:
                self._expected = None
        if expired:
            self._deaf(
                f"its own test notification, sent through a work connection, did not arrive"
                f" within {PROOF_TIMEOUT_SECONDS:g}s",
                POOLER_HINT,
            )

    def _deaf(self, problem: str, hint: str) -> None:
        """Cannot hear: one line when it starts (not on every retry, nor when the reason
        shifts, as it does behind a pooler between connects), then poll until proven.

        ``problem`` says why without naming the server: it travels in the heartbeat to
        ``check`` and to the web console's pages, which anonymous visitors may read; this
        line, for the reactor's operator, says where it listens."""
        if self.hears is not False:
            log.warning(
                "listener.deaf",
                problem=problem,
                hint=hint,
                listen=self._shown_url,
                polling_every_s=self._poll_interval_s,
            )
        self.hears, self.problem = False, problem
        self._metrics.listener_hears.set(0)
        self._on_deaf()

    def _proven(self) -> None:
        self.last_proof = time.time()
        if self.hears is not True:
            log.info("listener.proven", listen=self._shown_url, recovered=self.hears is False)
        self.hears, self.problem = True, None
        self._metrics.listener_hears.set(1)

    def _handle(self, channel: str, payload: str) -> None:
        if channel == self.probe_channel:
            with self._lock:
                proof = self._expected is not None and self._expected[0] == payload
                if proof:
                    self._expected = None
            if proof:
                self._proven()
            return  # an old proof, late: it says nothing now
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
        if isinstance(event, HoldsReleased):
            # Any number of runs may have been held and be due now: every worker looks.
            self._dispatcher.wake_all()
        elif isinstance(event, DataArrived) or event.phase in WORKABLE:
            # A run created WAITING_FOR_DATA or turned terminal needs no advance; every
            # later phase change notifies again (or is made by a reactor that keeps
            # stepping the run itself), so skipping it loses nothing.
            self._dispatcher.wake(notified_at=received)


def prove(listener: Listener, engine: Engine) -> None:
    """The listener check service's step: notify the listener's own channel through a
    work connection, the way every real notification reaches it (commits of other
    sessions); the listener marks itself hearing when it arrives, deaf when it does not,
    or when the database skipped it (as it skips every notification while its queue is
    past the limit)."""
    payload = listener.expect_proof()
    if payload is None:
        return
    try:
        with engine.begin() as conn:
            sent = conn.execute(
                query("listener_probe"), {"channel": listener.probe_channel, "payload": payload}
            ).scalar_one()
    except BaseException:
        listener.cancel_proof()
        raise
    if not sent:
        listener.proof_skipped()


def _ping(conn: psycopg.Connection[Any], timeout: float) -> list[tuple[str, str]]:
    """``listener_ping`` (``SELECT 1``), waiting at most ``timeout`` for the answer
    (OperationalError if none comes); return the notifications that arrived meanwhile,
    as (channel, payload)."""
    pgconn = conn.pgconn
    pgconn.send_query(driver_sql(query("listener_ping")).encode())
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
