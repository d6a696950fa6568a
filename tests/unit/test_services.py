"""A maintenance service's loop, without a database: whatever its step raises, the loop
goes on, says so, backs off, and recovers when the cause goes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from prometheus.orchestration.metrics import ReactorMetrics
from prometheus.orchestration.services import Backoff, Service
from tests.support.waiting import wait_until

INTERVAL = 0.05


class Cause:
    """What makes the step fail, until the test removes it."""

    def __init__(self) -> None:
        self.present = threading.Event()
        self.calls = 0

    def step(self) -> None:
        self.calls += 1
        if self.present.is_set():
            raise KeyError("a bug, not an outage")


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def service(cause: Cause, stop: threading.Event, metrics: ReactorMetrics) -> Service:
    return Service(
        "job",
        cause.step,
        interval=INTERVAL,
        failed_event="job.failed",
        reactor_id="r",
        metrics=metrics,
        stop=stop,
    )


def test_a_step_that_raises_anything_is_logged_retried_and_recovers(stop: threading.Event) -> None:
    metrics = ReactorMetrics()
    cause = Cause()
    cause.present.set()
    job = service(cause, stop, metrics)
    with capture_logs() as logs:
        job.start()
        wait_until(lambda: job.failures >= 3, what="three failed rounds")
        assert job.thread.is_alive()
        assert not job.healthy(job.last_round or 0.0)
        assert job.last_error == "'a bug, not an outage'"
        cause.present.clear()
        wait_until(lambda: job.failures == 0 and job.rounds > 3, what="a round without error")
    assert job.thread.is_alive()
    assert job.healthy(job.last_round or 0.0)
    failed = [e for e in logs if e["event"] == "job.failed"]
    assert len(failed) >= 3
    assert failed[0]["log_level"] == "error"  # not a database error: a bug to hear about
    assert failed[0]["error_type"] == "KeyError" and failed[0]["service"] == "job"
    assert [e["event"] for e in logs].count("service.recovered") == 1
    failures = metrics.registry.get_sample_value(
        "prometheus_service_failures_total", {"service": "job"}
    )
    assert failures is not None and failures >= 3
    stop.set()
    job.wake()
    job.thread.join(5)
    assert not job.thread.is_alive()


def test_a_service_that_has_not_finished_a_round_lately_is_unhealthy(
    stop: threading.Event,
) -> None:
    job = service(Cause(), stop, ReactorMetrics())
    assert not job.healthy(0.0)  # never ran
    job.start()
    wait_until(lambda: job.rounds >= 1, what="a round")
    assert job.last_round is not None
    assert job.healthy(job.last_round)
    assert not job.healthy(job.last_round + 3 * INTERVAL + 5.1)  # its step would be stuck


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(initial=1.0, cap=8.0)
    delays = [backoff.next_delay() for _ in range(6)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert delays[-1] >= 4.0  # at the cap: between cap/2 and cap
    backoff.reset()
    assert backoff.next_delay() <= 1.0
