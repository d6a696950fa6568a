"""Where an Airflow task finds the database: an Airflow connection, or the environment.

Read when a task executes or a trigger runs, never when a DAG file is parsed (parsing
happens often, and in processes that have no business with the database). Neither the
operators' fields nor the trigger's serialized kwargs ever hold the URL: only the
connection's id, so no password reaches the metadata database or the UI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.db.connect import make_engine

APPLICATION_NAME = "prometheus-airflow"


def task_settings(conn_id: str | None) -> Settings:
    """This process's ``PROMETHEUS_*`` settings, with the database of ``conn_id`` if
    given (its URI, any Postgres connection), else ``PROMETHEUS_DATABASE_URL``. Waits
    LISTEN on ``PROMETHEUS_LISTEN_URL`` where it is set (a database behind a transaction
    pooler), else on the same database."""
    settings = Settings.from_process_env()
    if conn_id:
        return settings.with_database_url(BaseHook.get_connection(conn_id).get_uri())
    return _require_url(settings)


async def trigger_settings(conn_id: str | None) -> Settings:
    """``task_settings`` for a trigger, which must not block the triggerer's loop."""
    settings = Settings.from_process_env()
    if conn_id:
        connection = await BaseHook.aget_connection(conn_id)
        return settings.with_database_url(await connection.aget_uri())
    return _require_url(settings)


@contextmanager
def task_engine(settings: Settings) -> Iterator[Engine]:
    """A one-connection engine for one task's execution, disposed of when it ends."""
    assert settings.database_url is not None, "task_settings gives a URL"
    engine = make_engine(settings.database_url, application_name=APPLICATION_NAME, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


def _require_url(settings: Settings) -> Settings:
    if settings.database_url is None:
        raise AirflowFailException(
            "no database: set PROMETHEUS_DATABASE_URL where tasks and triggers run,"
            " or give the task a conn_id"
        )
    return settings
