"""The phase watchdog: fires at the deadline, never before, never for a finished phase."""

from __future__ import annotations

import threading
import time

import pytest

from prometheus.pipeline.deadlines import Deadline, PhaseTimeout, Watchdog
from tests.support.waiting import wait_until


class Alarm:
    """An on_expiry callback that remembers when it rang."""

    def __init__(self, *, fail: bool = False) -> None:
        self.rang_at: float | None = None
        self.rings = 0
        self.fail = fail
        self.event = threading.Event()

    def __call__(self, deadline: Deadline) -> None:
        self.rang_at = time.monotonic()
        self.rings += 1
        self.event.set()
        if self.fail:
            raise RuntimeError("cancel failed")


def test_fires_after_the_deadline_and_not_before() -> None:
    watchdog, alarm = Watchdog(), Alarm()
    with watchdog.guard(0.05, alarm) as deadline:
        wait_until(alarm.event.is_set, timeout=5, what="the watchdog to fire")
        assert alarm.rang_at is not None
        assert alarm.rang_at >= deadline.at
        assert deadline.expired
        with pytest.raises(PhaseTimeout, match=r"timed out after 0\.05s"):
            deadline.check()
    assert alarm.rings == 1


def test_a_retired_guard_never_fires() -> None:
    watchdog, early, late = Watchdog(), Alarm(), Alarm()
    with watchdog.guard(0.05, early) as finished:
        pass
    with watchdog.guard(0.2, late):
        wait_until(late.event.is_set, timeout=5, what="the later deadline to fire")
    # The later deadline has fired, so the earlier one was due first, and was skipped.
    assert early.rings == 0
    assert not finished.expired


def test_an_earlier_deadline_added_later_wakes_the_watchdog() -> None:
    watchdog, slow, fast = Watchdog(), Alarm(), Alarm()
    with watchdog.guard(3600, slow), watchdog.guard(0.05, fast):
        wait_until(fast.event.is_set, timeout=5, what="the short deadline to fire")
    assert slow.rings == 0


def test_deadlines_fire_in_order() -> None:
    watchdog = Watchdog()
    alarms = [Alarm() for _ in range(3)]
    with (
        watchdog.guard(0.15, alarms[2]),
        watchdog.guard(0.05, alarms[0]),
        watchdog.guard(0.1, alarms[1]),
    ):
        wait_until(lambda: all(a.event.is_set() for a in alarms), timeout=5, what="all three")
    times = [a.rang_at for a in alarms]
    assert None not in times
    assert times == sorted(times, key=lambda t: t or 0.0)


def test_a_failing_callback_does_not_stop_the_watchdog() -> None:
    watchdog, broken, healthy = Watchdog(), Alarm(fail=True), Alarm()
    with watchdog.guard(0.02, broken):
        wait_until(broken.event.is_set, timeout=5, what="the failing callback")
    with watchdog.guard(0.02, healthy):
        wait_until(healthy.event.is_set, timeout=5, what="the next deadline after a failure")


def test_finished_phases_do_not_pile_up() -> None:
    watchdog, alarm = Watchdog(), Alarm()
    for _ in range(200):
        with watchdog.guard(3600, alarm):
            pass
    assert len(watchdog._heap) < 100  # compacted: hour-long dead entries are dropped
    with watchdog.guard(0.02, alarm):
        wait_until(alarm.event.is_set, timeout=5, what="a deadline after compaction")
    assert alarm.rings == 1


def test_deadline_check_is_quiet_before_the_time() -> None:
    deadline = Deadline(at=time.monotonic() + 60, timeout_s=60)
    deadline.check()
    deadline.expired = True
    with pytest.raises(PhaseTimeout):
        deadline.check()


def test_a_phase_cannot_leave_its_guard_while_its_expiry_runs() -> None:
    """Otherwise the cancel could land on whatever the connection does next."""
    watchdog = Watchdog()
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_cancel(deadline: Deadline) -> None:
        with deadline.unless_finished() as running:
            assert running
            started.set()
            release.wait(5)
            order.append("cancel sent")

    def releaser() -> None:
        started.wait(5)
        time.sleep(0.2)  # drives the scenario; no assertion depends on how long this is
        order.append("releasing")
        release.set()

    helper = threading.Thread(target=releaser)
    helper.start()
    with watchdog.guard(0.01, slow_cancel):
        wait_until(started.is_set, timeout=5, what="the expiry to start")
    order.append("guard left")
    helper.join(5)
    assert order == ["releasing", "cancel sent", "guard left"]
