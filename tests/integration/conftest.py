"""Fixtures for in-process reactor tests (``reactors`` itself is in tests/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.support.inprocess import ReactorThreads
from tests.support.proxy import Proxy
from tests.support.task_modules import WEDGE_ENTERED, WEDGE_RELEASE


@pytest.fixture
def proxy(server_url: str) -> Iterator[Proxy]:
    """A TCP proxy to the test server; point a URL at it with ``proxy.url(db_url)``."""
    with Proxy(server_url) as p:
        yield p


@pytest.fixture
def wedge_release(reactors: ReactorThreads) -> Iterator[threading.Event]:
    """For tasks of the ``WEDGES`` region: set it to let them return. Set at teardown
    before any reactor is stopped (this fixture depends on ``reactors``), so no worker
    stays wedged into the next test."""
    WEDGE_ENTERED.clear()
    WEDGE_RELEASE.clear()
    yield WEDGE_RELEASE
    WEDGE_RELEASE.set()
