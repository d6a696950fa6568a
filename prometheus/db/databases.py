"""Whole databases: create and drop them, and scratch ones that clean up after themselves.

``prometheus bench`` measures on a scratch database it creates on the configured server,
so it never touches real data; the test suite uses the same functions per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from prometheus.config import DATABASE_URL_NAME, libpq_url
from prometheus.conninfo import ConnInfo
from prometheus.db.connect import make_engine
from prometheus.db.driver import driver_sql
from prometheus.db.migrate import upgrade
from prometheus.db.queries import query


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database (in the URL's own form)."""
    return ConnInfo.parse(url, name=DATABASE_URL_NAME).with_params(dbname=name).render()


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(statement)
    return with_database(server_url, name)


def database_exists(server_url: str, name: str) -> bool:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        row = conn.execute(driver_sql(query("database_exists")), {"name": name}).fetchone()
        return bool(row and row[0])


def drop_database(server_url: str, name: str) -> None:
    """Drop it even if connections are left (a killed reactor's, say)."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(statement)


def upgrade_database(url: str) -> None:
    engine = make_engine(url, application_name="prometheus-upgrade", pool_size=1)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@contextmanager
def scratch_database(server_url: str, *, prefix: str = "prometheus_scratch") -> Iterator[str]:
    """A new, upgraded database on the server of ``server_url``, dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name)
    try:
        upgrade_database(url)
        yield url
    finally:
        drop_database(server_url, name)
