"""Fixtures for in-process reactor tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.inprocess import ReactorThreads, reactor_threads
from tests.support.proxy import Proxy


@pytest.fixture
def reactors(db_url: str) -> Iterator[ReactorThreads]:
    """Start reactors with ``reactors.start(settings)``; all are stopped and joined at
    teardown, before the test database is dropped (hence the db_url dependency)."""
    with reactor_threads() as threads:
        yield threads


@pytest.fixture
def proxy(server_url: str) -> Iterator[Proxy]:
    """A TCP proxy to the test server; point a URL at it with ``proxy.url(db_url)``."""
    with Proxy(server_url) as p:
        yield p
