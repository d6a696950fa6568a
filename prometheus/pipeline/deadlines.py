"""Phase timeouts: one watchdog thread keeps every running phase's deadline in the process.

One thread with a heap, not a timer per phase: phases are short and many. At a deadline
the watchdog marks it expired and hands it to the phase's ``on_expiry`` in a thread of
its own (what to do about a late phase may take database round trips, and must never
hold up other deadlines). The phase's guard holds the deadline's lock while it leaves,
and ``on_expiry`` acts under that lock: it can never act on a phase that has finished,
whose connection may already be doing other work.
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
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def check(self) -> None:
        if self.expired or time.monotonic() >= self.at:
            raise PhaseTimeout(f"phase timed out after {self.timeout_s:g}s")

    @contextmanager
    def unless_finished(self) -> Iterator[bool]:
        """Hold the phase in place (it cannot leave its guard) and say if it still runs."""
        with self.lock:
            yield not self.finished.is_set()


@dataclass(order=True)
class _Entry:
    at: float
    seq: int
    deadline: Deadline = field(compare=False)
    on_expiry: Callable[[Deadline], object] = field(compare=False)
    active: bool = field(default=True, compare=False)


class Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._retired = 0

    @contextmanager
    def guard(
        self, timeout_s: float, on_expiry: Callable[[Deadline], object]
    ) -> Iterator[Deadline]:
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
            with deadline.lock:  # waits for an on_expiry that is acting right now
                deadline.finished.set()
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
                entry.deadline.expired = True
            threading.Thread(
                target=self._expire, args=(entry,), name="phase-expiry", daemon=True
            ).start()

    @staticmethod
    def _expire(entry: _Entry) -> None:
        try:
            entry.on_expiry(entry.deadline)
        except Exception as exc:  # the outermost loop of this thread: log, never crash
            log.warning("phase.expiry_failed", error=str(exc))


WATCHDOG = Watchdog()
