"""The console's count of requests in flight: closing waits until none uses the pool."""

from __future__ import annotations

import asyncio
import threading

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from prometheus.web.inflight import InFlight

REQUEST = Request({"type": "http", "method": "GET", "path": "/", "headers": []})


def test_waiting_for_idle_lasts_as_long_as_a_tracked_request_runs() -> None:
    in_flight = InFlight()
    entered, release = threading.Event(), threading.Event()

    def slow(request: Request) -> Response:
        entered.set()
        release.wait(10)
        return PlainTextResponse("done")

    handler = in_flight.tracked(slow)
    worker = threading.Thread(target=handler, args=(REQUEST,))
    worker.start()
    assert entered.wait(10)
    assert in_flight.wait_idle(0.05) is False  # still running: the pool must stay
    release.set()
    assert in_flight.wait_idle(10) is True
    worker.join(10)


def test_an_async_endpoint_is_counted_until_it_returns_even_when_it_fails() -> None:
    in_flight = InFlight()
    seen: list[bool] = []

    async def failing(request: Request) -> Response:
        seen.append(in_flight.wait_idle(0))
        raise RuntimeError("boom")

    handler = in_flight.tracked(failing)
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(handler(REQUEST))
    assert seen == [False]
    assert in_flight.wait_idle(0) is True
