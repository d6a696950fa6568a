"""What a wait decides, without a database: which phase counts as reached, which
notification wakes it, when it ends."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from prometheus.errors import InputError
from prometheus.orchestration.waiting import PhaseWait, RunFailed, WaitTimedOut
from prometheus.pipeline.phases import LINE, Phase, has_reached
from prometheus.pipeline.runs import Run

DAY = date(2026, 11, 24)
P = Phase


def run_in(phase: Phase, *, run_id: int = 7, error: str | None = None) -> Run:
    now = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    return Run(run_id, DAY, "US", phase, 1, error, None, now, now, now)


def payload(**fields: object) -> str:
    return json.dumps(fields)


def test_the_line_runs_from_waiting_for_data_to_completed() -> None:
    assert LINE == (P.WAITING_FOR_DATA, P.DATA_READY, P.SIGNALS_DONE, P.UNIVERSES_DONE, P.COMPLETED)


@pytest.mark.parametrize(
    ("phase", "target", "reached"),
    [
        (P.DATA_READY, P.DATA_READY, True),
        (P.COMPLETED, P.SIGNALS_DONE, True),  # past it counts
        (P.SIGNALS_DONE, P.COMPLETED, False),
        (P.WAITING_FOR_DATA, P.DATA_READY, False),
        (P.FAILED, P.DATA_READY, False),  # a failed run reached nothing on the line
        (P.FAILED, P.FAILED, True),
        (P.COMPLETED, P.FAILED, False),
    ],
)
def test_has_reached(phase: Phase, target: Phase, reached: bool) -> None:
    assert has_reached(phase, target) is reached


def test_judge_returns_the_run_once_it_reached_the_phase_and_raises_when_failed() -> None:
    wait = PhaseWait(DAY, "US", P.SIGNALS_DONE, timeout=10)
    assert wait.judge(None) is None
    assert wait.judge(run_in(P.DATA_READY)) is None
    assert wait.judge(run_in(P.UNIVERSES_DONE)) == run_in(P.UNIVERSES_DONE)
    with pytest.raises(RunFailed, match=r"run 7 \(2026-11-24 US\) is FAILED.*: boom"):
        wait.judge(run_in(P.FAILED, error="boom"))


def test_before_the_run_is_known_a_notification_wakes_the_wait_by_its_key() -> None:
    wait = PhaseWait(DAY, "US", P.COMPLETED, timeout=10)
    ours = payload(run_id=3, phase="DATA_READY", as_of_date="2026-11-24", region="US")
    other_region = payload(run_id=4, phase="DATA_READY", as_of_date="2026-11-24", region="EU")
    other_day = payload(run_id=5, phase="DATA_READY", as_of_date="2026-11-25", region="US")
    assert wait.wakes(ours)
    assert not wait.wakes(other_region)
    assert not wait.wakes(other_day)
    assert wait.wakes(payload(run_id=6, phase="COMPLETED"))  # no key: it may be ours


def test_once_the_run_is_known_only_its_id_wakes_the_wait() -> None:
    wait = PhaseWait(DAY, "US", P.COMPLETED, timeout=10)
    wait.judge(run_in(P.DATA_READY, run_id=7))
    assert wait.wakes(payload(run_id=7, phase="COMPLETED"))
    assert not wait.wakes(payload(run_id=8, phase="COMPLETED", as_of_date="2026-11-24"))


@pytest.mark.parametrize("garbage", ["", "not json", "[1]", payload(run_id="7", phase="X")])
def test_a_malformed_notification_does_not_wake_the_wait(garbage: str) -> None:
    assert not PhaseWait(DAY, "US", P.COMPLETED, timeout=10).wakes(garbage)


def test_next_wait_is_the_poll_interval_until_the_timeout_then_raises() -> None:
    wait = PhaseWait(DAY, "US", P.COMPLETED, timeout=100, poll_interval=5)
    assert wait.next_wait() == 5
    wait.judge(run_in(P.DATA_READY))
    wait.started -= 99.5  # as if 99.5 s had gone by
    assert 0 < wait.next_wait() <= 0.5
    wait.started -= 1
    with pytest.raises(WaitTimedOut, match=r"did not reach COMPLETED within 100s \(it is DATA_"):
        wait.next_wait()


def test_a_run_that_does_not_exist_yet_is_said_so_at_the_timeout() -> None:
    wait = PhaseWait(DAY, "US", P.COMPLETED, timeout=0)
    with pytest.raises(WaitTimedOut, match="it does not exist yet"):
        wait.next_wait()


@pytest.mark.parametrize(
    ("phase", "timeout", "poll", "message"),
    [
        (P.FAILED, 10, 1, "not FAILED"),
        (P.COMPLETED, -1, 1, "timeout must be >= 0"),
        (P.COMPLETED, 10, 0, "poll interval must be > 0"),
    ],
)
def test_bad_arguments_are_input_errors(
    phase: Phase, timeout: float, poll: float, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        PhaseWait(DAY, "US", phase, timeout=timeout, poll_interval=poll)
