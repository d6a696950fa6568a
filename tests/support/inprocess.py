"""Reactors in threads of the test process, always stopped and joined at teardown.

``Reactor.run`` installs no signal handlers off the main thread; ``request_stop`` is how
an in-process reactor is stopped, and ``run`` returns its exit code, which teardown
checks (1 means a part of the reactor died under the test).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from prometheus.config import Settings
from prometheus.orchestration.engine_daemon import Reactor
from tests.support.waiting import wait_until

JOIN_SECONDS = 30.0


@dataclass
class RunningReactor:
    reactor: Reactor
    thread: threading.Thread
    exit_code: int | None = None
    error: BaseException | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def reactor_id(self) -> str:
        return self.reactor.reactor_id

    @property
    def listener_name(self) -> str:
        """The listener connection's ``application_name`` (libpq keeps 63 bytes)."""
        return f"prometheus-listener:{self.reactor_id}"[:63]

    @property
    def pool_name(self) -> str:
        """The ``application_name`` of the reactor's pooled connections."""
        return f"prometheus-reactor:{self.reactor_id}"[:63]

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample of the reactor's own metrics registry (0 if not there yet)."""
        value = self.reactor.metrics.registry.get_sample_value(name, labels or {})
        return value or 0.0

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Listening, swept at least once, and no sweep pending or under way.

        The quiet check matters to tests that prove a *notification* did something:
        a sweep still to come after the listener connected would do it too."""
        seen: list[tuple[float, float | None]] = []

        def settled() -> bool:
            sweeper = self.reactor.sweeper
            state = (self.sample("prometheus_sweeps_total"), sweeper.last_round)
            ok = (
                self.thread.is_alive()
                and self.reactor.listener.hearing
                and state[0] >= 1
                and not sweeper.pending
            )
            seen.append(state if ok else (-1.0, None))
            return ok and len(seen) >= 3 and seen[-3] == seen[-2] == seen[-1]

        wait_until(settled, timeout=timeout, interval=0.05, what="the reactor ready and settled")

    # -- the HTTP side (needs Settings.metrics_port) --------------------------------------

    @property
    def base_url(self) -> str:
        assert self.reactor.health is not None, "start the reactor with metrics_port=0"
        return f"http://127.0.0.1:{self.reactor.health.port}"

    def healthz(self) -> tuple[int, dict[str, Any]]:
        status, body = _get(f"{self.base_url}/healthz")
        report: dict[str, Any] = json.loads(body)
        return status, report

    def metrics_text(self) -> str:
        status, body = _get(f"{self.base_url}/metrics")
        assert status == 200, body
        return body

    def scraped(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """/metrics parsed: sample name -> [(labels, value)]."""
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            for s in family.samples:
                samples.setdefault(s.name, []).append((dict(s.labels), s.value))
        return samples

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self, timeout: float = JOIN_SECONDS) -> int | None:
        """Ask the reactor to stop and join its thread; return its exit code."""
        if not self._stopped:
            self._stopped = True
            self.reactor.request_stop()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"reactor {self.reactor_id} did not stop within {timeout}s")
        if self.error is not None:
            raise AssertionError(f"reactor {self.reactor_id} crashed") from self.error
        return self.exit_code


class ReactorThreads:
    """Start reactors in threads; ``close()`` stops and joins every one of them."""

    def __init__(self) -> None:
        self._running: list[RunningReactor] = []

    def start(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        without: Collection[str] = (),
    ) -> RunningReactor:
        """``without``: maintenance services (by name: "poll", "sweep", ...) this reactor
        never starts, so a test can show what another backstop does alone."""
        reactor = Reactor(settings, metrics_host="127.0.0.1", clock=clock)
        unknown = set(without) - {s.name for s in reactor.services}
        assert not unknown, f"no such services: {sorted(unknown)}"
        reactor.services = tuple(s for s in reactor.services if s.name not in without)
        running = RunningReactor(reactor, threading.Thread())
        running.thread = threading.Thread(
            target=_serve, args=(running,), name=f"reactor-{reactor.reactor_id}", daemon=True
        )
        self._running.append(running)
        running.thread.start()
        return running

    def close(self) -> None:
        """Stop all (also those a test stopped already), then report what went wrong."""
        for running in self._running:
            if not running._stopped:
                running._stopped = True
                running.reactor.request_stop()
        problems: list[str] = []
        for running in self._running:
            try:
                code = running.stop()
            except AssertionError as exc:
                problems.append(f"{exc}: {exc.__cause__!r}")
                continue
            if code != 0:
                problems.append(f"reactor {running.reactor_id} exited {code}")
        if problems:
            raise AssertionError("; ".join(problems))


def _serve(running: RunningReactor) -> None:
    reactor = running.reactor
    try:
        running.exit_code = reactor.run()
    except BaseException as exc:  # reported by stop(), in the test's thread
        running.error = exc  # run() released what __init__ opened before it raised


@contextmanager
def reactor_threads() -> Iterator[ReactorThreads]:
    threads = ReactorThreads()
    try:
        yield threads
    finally:
        threads.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()
