"""Statements sent to psycopg directly, inside a SQLAlchemy connection's transaction.

The state machine's hot path (claim the run, savepoint, change the phase) runs thousands
of times a second, and SQLAlchemy's per-statement machinery costs more than those
statements do. These few go to the driver, on the same connection and transaction.
Errors come back as SQLAlchemy's own (``DBAPIError``), so callers handle one family, and
a lost connection is invalidated and the pool's idle connections are dropped, as
SQLAlchemy does itself on a disconnect: after a server restart they are all dead. A
standby's refusal to write counts as a lost connection too (see ``make_engine``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, TextClause
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.exc import DBAPIError

from prometheus.db.sqlstate import is_standby_error

_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialects are untyped


@functools.cache
def driver_sql(clause: TextClause) -> str:
    """A named query in psycopg's ``%(name)s`` form (compiled once per query)."""
    return str(clause.compile(dialect=_DIALECT))


@contextmanager
def driver_connection(conn: Connection) -> Iterator[psycopg.Connection[Any]]:
    """The psycopg connection under ``conn``; its errors re-raised as SQLAlchemy's."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection), "prometheus engines use psycopg 3"
    try:
        yield driver
    except psycopg.Error as exc:
        lost = driver.broken or driver.closed or is_standby_error(exc)
        if lost:
            conn.invalidate(exc)
            conn.engine.pool.dispose()
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=lost
        ) from exc
