"""The work pool (a SQLAlchemy Engine) and the dedicated psycopg listener connection.

Both ask the server to notice a dead peer quickly: TCP keepalives for a link that goes
silent, and ``client_connection_check_interval`` so that a backend whose client was
SIGKILLed in the middle of a phase aborts the transaction and frees the run's row lock
within seconds, instead of when the lock wait or the long query ends.
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine

from prometheus.config import libpq_url, sqlalchemy_url

DEAD_CLIENT_CHECK_MS = 2000
CONNECT_TIMEOUT_S = 10
_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    # Unacknowledged data (a query sent into a blackholed link) fails after this, not
    # after the kernel's retransmission limit of a quarter of an hour.
    "tcp_user_timeout": 20_000,
    "connect_timeout": CONNECT_TIMEOUT_S,
}


def make_engine(database_url: str, *, application_name: str, pool_size: int = 5) -> Engine:
    """The pool that phases and CLI commands run on; no pre-ping (it costs a round trip on
    every checkout, on the hot path); callers retry once on an invalidated connection."""
    return create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=30,
        connect_args={
            **_KEEPALIVES,
            "application_name": application_name,
            "options": f"-c client_connection_check_interval={DEAD_CLIENT_CHECK_MS}",
        },
    )


def connect_listener(database_url: str, *, application_name: str) -> psycopg.Connection[Any]:
    """A standalone autocommit connection for LISTEN only: no transaction, no work on it,
    so a slow phase never delays a notification and a notification never waits on a lock."""
    return psycopg.connect(
        libpq_url(database_url),
        autocommit=True,
        application_name=application_name,
        **_KEEPALIVES,
    )


async def connect_listener_async(
    database_url: str, *, application_name: str
) -> psycopg.AsyncConnection[Any]:
    """``connect_listener`` for an asyncio program (an Airflow trigger's wait, the web
    console's change feed)."""
    return await psycopg.AsyncConnection.connect(
        libpq_url(database_url),
        autocommit=True,
        application_name=application_name,
        **_KEEPALIVES,
    )
