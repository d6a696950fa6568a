"""The work pool (a SQLAlchemy Engine) and the dedicated psycopg listener connection.

Both are given the URL as libpq parsed it (``prometheus.conninfo``), so every libpq form
works, multi-host URLs and ``target_session_attrs`` included: after a failover, libpq
finds the new primary on the next connect.

Work connections are safe behind a transaction pooler (PgBouncer ``pool_mode =
transaction``): no startup ``options`` (stock PgBouncer refuses the connection), no
server-side prepared statements where a pooler is in the way (it would run the next
statement on a server connection that never saw the PREPARE), and no session state
across transactions. Whether a pooler is in the way is asked of each new connection: the
server process that answers (``pg_backend_pid()``) is the one the connection started
with only when nothing sits between them. Direct connections keep psycopg's prepared
statements, which save the hot path's planning (bench throughput: about a quarter more
transitions per second on this project's machine). What used to be a startup option,
``client_connection_check_interval`` (so a backend whose client was SIGKILLed mid-phase
ends the transaction and frees the run's lock within seconds), is set per transaction by
the claims that start a phase.

Both ask the kernel to notice a dead peer quickly (TCP keepalives, ``tcp_user_timeout``);
a URL that sets one of these itself keeps its own value.
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext

from prometheus.config import DATABASE_URL_NAME, LISTEN_URL_NAME
from prometheus.conninfo import ConnInfo
from prometheus.db.driver import driver_sql
from prometheus.db.queries import query
from prometheus.db.sqlstate import is_standby_error

CONNECT_TIMEOUT_S = 10
PREPARE_THRESHOLD = 5  # psycopg's default: a statement run this often is prepared
_LINK_DEFAULTS: dict[str, str] = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
    # Unacknowledged data (a query sent into a blackholed link) fails after this, not
    # after the kernel's retransmission limit of a quarter of an hour.
    "tcp_user_timeout": "20000",
    "connect_timeout": str(CONNECT_TIMEOUT_S),
}


def make_engine(database_url: str, *, application_name: str, pool_size: int = 5) -> Engine:
    """The pool that phases and CLI commands run on; no pre-ping (it costs a round trip on
    every checkout, on the hot path); callers retry once on an invalidated connection."""
    conninfo = _conninfo(database_url, DATABASE_URL_NAME, application_name)
    engine = create_engine(
        # The dialect only: the server is named by the conninfo below, which psycopg hands
        # to libpq as it is (SQLAlchemy's URL has no multi-host form libpq would share),
        # and which no repr of the engine can show.
        URL.create("postgresql+psycopg"),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=30,
        # No prepared statements until the connection is known to be direct (below).
        connect_args={"prepare_threshold": None},
    )

    @event.listens_for(engine, "do_connect")
    def _connect_with_conninfo(
        dialect: Any, record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        cargs[:] = [conninfo]  # the dialect's own first argument is an empty conninfo

    @event.listens_for(engine, "connect")
    def _prepare_when_direct(driver: psycopg.Connection[Any], record: Any) -> None:
        if not behind_a_pooler(driver):
            driver.prepare_threshold = PREPARE_THRESHOLD

    @event.listens_for(engine, "handle_error")
    def _standby_is_a_lost_connection(context: ExceptionContext) -> None:
        # A standby (a failover demoted our server, or the URL names a standby first)
        # refuses every write on these connections: drop them all, as for a lost
        # connection, so the next connect goes through target_session_attrs again.
        if is_standby_error(context.original_exception):
            context.is_disconnect = True

    return engine


def behind_a_pooler(driver: psycopg.Connection[Any]) -> bool:
    """Whether something (PgBouncer, another pooler) stands between this connection and
    the server: its startup key then names the pooler's client, not the server process
    that runs our statements. Leaves the connection idle, outside any transaction."""
    try:
        row = driver.execute(driver_sql(query("backend_pid"))).fetchone()
    finally:
        driver.rollback()
    return row is None or row[0] != driver.info.backend_pid


def connect_listener(listen_url: str, *, application_name: str) -> psycopg.Connection[Any]:
    """A standalone autocommit connection for LISTEN only: no transaction, no work on it,
    so a slow phase never delays a notification and a notification never waits on a lock.

    Never a server-side prepared statement on it: a wait reads its run on this connection
    once per poll, and where no listen URL is set it comes through the database URL,
    which may be a transaction pooler (a prepared read would run on a server connection
    that never saw it). What it runs is too rare for preparing to save anything."""
    return psycopg.connect(
        _conninfo(listen_url, LISTEN_URL_NAME, application_name),
        autocommit=True,
        prepare_threshold=None,
    )


async def connect_listener_async(
    listen_url: str, *, application_name: str
) -> psycopg.AsyncConnection[Any]:
    """``connect_listener`` for an asyncio program (an Airflow trigger's wait, the web
    console's change feed)."""
    return await psycopg.AsyncConnection.connect(
        _conninfo(listen_url, LISTEN_URL_NAME, application_name),
        autocommit=True,
        prepare_threshold=None,
    )


def _conninfo(url: str, name: str, application_name: str) -> str:
    info = ConnInfo.parse(url, name=name)
    defaults = {k: v for k, v in _LINK_DEFAULTS.items() if k not in info.params}
    return info.with_params(**defaults, application_name=application_name).conninfo()
