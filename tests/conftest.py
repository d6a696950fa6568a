"""Session fixtures: one PostgreSQL server, one upgraded template, a fresh database per test.

``CREATE DATABASE ... TEMPLATE`` copies the upgraded schema quickly, so every test starts
from a clean, real database; it is dropped ``WITH (FORCE)`` afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import create_database, drop_database, upgrade_database
from tests.support.inprocess import ReactorThreads, reactor_threads
from tests.support.servers import postgres_server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-skips",
        action="store_true",
        help="fail the session if any test was skipped: CI installs every dependency the"
        " tests need (the airflow and dagster extras too), so a skip there is a missing install",
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.getoption("--no-skips") and _skipped(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if config.getoption("--no-skips") and (count := _skipped(config)):
        terminalreporter.write_line(
            f"--no-skips: {count} test(s) or module(s) skipped; that fails this run", red=True
        )


def _skipped(config: pytest.Config) -> int:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return len(reporter.stats.get("skipped", [])) if reporter is not None else 0


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def template_name(server_url: str) -> Iterator[str]:
    """An upgraded database to copy from; no connection stays open on it."""
    name = _unique("prometheus_tpl")
    upgrade_database(create_database(server_url, name))
    yield name
    drop_database(server_url, name)


@pytest.fixture
def db_url(server_url: str, template_name: str) -> Iterator[str]:
    """A fresh, upgraded database for one test."""
    name = _unique("prometheus_t")
    url = create_database(server_url, name, template=template_name)
    yield url
    drop_database(server_url, name)


@pytest.fixture
def empty_db_url(server_url: str) -> Iterator[str]:
    """A fresh database with no schema at all (for migration tests)."""
    name = _unique("prometheus_e")
    url = create_database(server_url, name)
    yield url
    drop_database(server_url, name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, application_name="tests", pool_size=8)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Settings for in-process engine calls: no backoff wait, so retries are immediate."""
    return Settings(database_url=db_url, retry_base=timedelta(0))


@pytest.fixture
def reactors(db_url: str) -> Iterator[ReactorThreads]:
    """Start reactors with ``reactors.start(settings)``; all are stopped and joined at
    teardown, before the test database is dropped (hence the db_url dependency)."""
    with reactor_threads() as threads:
        yield threads
