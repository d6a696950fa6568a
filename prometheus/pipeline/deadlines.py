"""Phase timeouts: one watchdog thread for every running phase in the process.

A task is plain Python and cannot be killed from outside its thread; what can be
stopped is the database statement it waits on. At the deadline the watchdog cancels
that statement, and when the task returns (or raises), an expired deadline turns the
attempt into a failure whose writes are rolled back. One thread with a heap, not a
timer per phase: phases are short and many, and a thread per phase costs more than one.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus.errors import PrometheusError
from prometheus.logs import get_logger

log = get_logger(__name__)


class PhaseTimeout(PrometheusError):
    """The phase ran past PROMETHEUS_PHASE_TIMEOUT."""


@dataclass
class Deadline:
    at: float  # time.monotonic()
    timeout_s: float
    expired: bool = False

    def check(self) -> None:
        if self.expired or time.monotonic() >= self.at:
            raise PhaseTimeout(f"phase timed out after {self.timeout_s:g}s")


@dataclass(order=True)
class _Entry:
    at: float
    seq: int
    deadline: Deadline = field(compare=False)
    on_expiry: Callable[[], object] = field(compare=False)
    active: bool = field(default=True, compare=False)


class Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._retired = 0

    @contextmanager
    def guard(self, timeout_s: float, on_expiry: Callable[[], object]) -> Iterator[Deadline]:
        deadline = Deadline(time.monotonic() + timeout_s, timeout_s)
        entry = _Entry(deadline.at, next(self._seq), deadline, on_expiry)
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="phase-watchdog", daemon=True
                )
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()
        try:
            yield deadline
        finally:
            self._retire(entry)

    def _retire(self, entry: _Entry) -> None:
        """Deactivate an entry; compact the heap once most of it is finished phases, which
        would otherwise sit there until their (hour-long) deadlines came round."""
        with self._cond:
            entry.active = False
            self._retired += 1
            if self._retired > 64 and self._retired * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e.active]
                heapq.heapify(self._heap)
                self._retired = 0

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or (
                    self._heap[0].active and self._heap[0].at > time.monotonic()
                ):
                    wait = self._heap[0].at - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                entry = heapq.heappop(self._heap)
                if not entry.active:
                    self._retired -= 1
                    continue
                # Still under the lock, which _retire needs: the phase cannot leave its
                # guard, and its connection go back to the pool and on to other work,
                # between this check and the cancel (which would then hit that work).
                entry.deadline.expired = True
                self._expire(entry)

    @staticmethod
    def _expire(entry: _Entry) -> None:
        try:
            entry.on_expiry()
        except Exception as exc:  # the watchdog must outlive one failed cancel
            log.warning("phase.cancel_failed", error=str(exc))


WATCHDOG = Watchdog()
