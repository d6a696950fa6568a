"""Fixtures for in-process reactor tests (``reactors`` itself is in tests/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from prometheus.db.connect import make_engine
from tests.support.clusters import PgBouncer, pgbouncer_binary, pgbouncer_in_front_of
from tests.support.inprocess import ReactorThreads
from tests.support.proxy import Proxy
from tests.support.task_modules import WEDGE_ENTERED, WEDGE_RELEASE


@pytest.fixture
def proxy(server_url: str) -> Iterator[Proxy]:
    """A TCP proxy to the test server; point a URL at it with ``proxy.url(db_url)``."""
    with Proxy(server_url) as p:
        yield p


@pytest.fixture
def bouncer(server_url: str) -> Iterator[PgBouncer]:
    """Debian's PgBouncer, stock but for ``pool_mode = transaction``, in front of the test
    server; point a URL through it with ``bouncer.url(db_url)``."""
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)")
    with pgbouncer_in_front_of(server_url, pool_mode="transaction") as bouncer:
        yield bouncer


@pytest.fixture
def pooled_engine(bouncer: PgBouncer, db_url: str) -> Iterator[Engine]:
    """An engine on the test database through the transaction pooler."""
    engine = make_engine(bouncer.url(db_url), application_name="tests-pooled", pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture
def wedge_release(reactors: ReactorThreads) -> Iterator[threading.Event]:
    """For tasks of the ``WEDGES`` region: set it to let them return. Set at teardown
    before any reactor is stopped (this fixture depends on ``reactors``), so no worker
    stays wedged into the next test."""
    WEDGE_ENTERED.clear()
    WEDGE_RELEASE.clear()
    yield WEDGE_RELEASE
    WEDGE_RELEASE.set()
