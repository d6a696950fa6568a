"""Work in flight (requests, the feed's version reads), so that closing the console never
pulls the pool from under it."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeAlias, TypeVar

from starlette.requests import Request
from starlette.responses import Response

Endpoint: TypeAlias = Callable[[Request], Any]
P = ParamSpec("P")
T = TypeVar("T")


class InFlight:
    """The database work running now. A server stopping cancels the requests still
    running (uvicorn, after its grace period), and closing the feed cancels its poll, but
    a thread doing the work runs on with its connection: closing the console waits for
    them before it closes the pool (a connection checked in to a disposed pool stays open
    until the garbage collector finds it)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def tracked(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` (sync, run in the thread pool, or async), counted while it runs."""
        if inspect.iscoroutinefunction(endpoint):
            run_async = endpoint

            async def counted_async(request: Request) -> Response:
                with self:
                    response: Response = await run_async(request)
                    return response

            return counted_async
        return self.counted(endpoint)

    def counted(self, work: Callable[P, T]) -> Callable[P, T]:
        """``work`` (a function run in a thread), counted while it runs."""

        def counted(*args: P.args, **kwargs: P.kwargs) -> T:
            with self:
                return work(*args, **kwargs)

        return counted

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._idle:
            self._count -= 1
            if not self._count:
                self._idle.notify_all()
