"""The console over HTTP on the real test database: an app per test (helpers in
tests/support/console.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.web.app import create_app
from tests.support.console import with_login


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return with_login(settings)


@pytest.fixture
def client(web_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings)) as test_client:
        yield test_client


@pytest.fixture
def read_only_client(web_settings: Settings) -> Iterator[TestClient]:
    """Credentials configured, but ``--read-only``."""
    with TestClient(create_app(web_settings, read_only=True)) as test_client:
        yield test_client


@pytest.fixture
def no_login_client(settings: Settings) -> Iterator[TestClient]:
    """No credentials configured: read-only by default."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def calendar() -> TradingCalendar:
    return TradingCalendar()
