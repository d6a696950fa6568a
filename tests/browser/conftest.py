"""A real browser: Playwright for Python driving Debian's ``chromium`` (Playwright's own
browser download is not reachable here). Where either is missing these tests skip with
one line; ``.ci/run`` installs both, and fails if any test was skipped."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.web.app import create_app
from prometheus.web.server import running_server
from tests.support.console import PASSWORD, USER, with_login

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One chromium per module (Playwright's loop lives in this thread while it runs)."""
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile that answers the console's login prompt."""
    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def console(settings: Settings) -> Iterator[str]:
    """The console, actions enabled, served by uvicorn; its base URL."""
    with running_server(create_app(with_login(settings))) as url:
        yield url


@pytest.fixture
def read_only_console(settings: Settings) -> Iterator[str]:
    """The console with a login configured but ``--read-only``."""
    with running_server(create_app(with_login(settings), read_only=True)) as url:
        yield url


@pytest.fixture
def calendar() -> TradingCalendar:
    return TradingCalendar()
