"""The transition table, the phase sets and the retry schedule (pure, no database)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from prometheus.config import RETRY_CAP
from prometheus.errors import InputError
from prometheus.pipeline.phases import (
    ACTIVE,
    NEXT,
    TASK_OF,
    TERMINAL,
    TRANSITIONS,
    WORKABLE,
    Phase,
    is_legal,
    parse_phase,
    retry_delay,
)

P = Phase

#: SPEC section 1, written out by hand: the forward chain, and every active phase to FAILED.
EXPECTED_LEGAL = {
    (P.WAITING_FOR_DATA, P.DATA_READY),
    (P.DATA_READY, P.SIGNALS_DONE),
    (P.SIGNALS_DONE, P.UNIVERSES_DONE),
    (P.UNIVERSES_DONE, P.COMPLETED),
    (P.WAITING_FOR_DATA, P.FAILED),
    (P.DATA_READY, P.FAILED),
    (P.SIGNALS_DONE, P.FAILED),
    (P.UNIVERSES_DONE, P.FAILED),
}


def test_phase_values_are_the_database_strings() -> None:
    assert [str(p) for p in Phase] == [
        "WAITING_FOR_DATA",
        "DATA_READY",
        "SIGNALS_DONE",
        "UNIVERSES_DONE",
        "COMPLETED",
        "FAILED",
    ]


def test_terminal_and_active_partition_the_phases() -> None:
    assert frozenset({P.COMPLETED, P.FAILED}) == TERMINAL
    assert frozenset({P.WAITING_FOR_DATA, P.DATA_READY, P.SIGNALS_DONE, P.UNIVERSES_DONE}) == ACTIVE
    assert not ACTIVE & TERMINAL


def test_transition_table_is_exactly_the_spec() -> None:
    assert set(TRANSITIONS) == EXPECTED_LEGAL


@pytest.mark.parametrize("source", list(Phase))
@pytest.mark.parametrize("target", list(Phase))
def test_is_legal_matches_the_spec_for_every_pair(source: Phase, target: Phase) -> None:
    assert is_legal(source, target) is ((source, target) in EXPECTED_LEGAL)


def test_terminal_phases_lead_nowhere() -> None:
    for terminal in TERMINAL:
        assert not any(is_legal(terminal, target) for target in Phase)


def test_workable_phases_name_their_task_and_successor() -> None:
    assert dict(TASK_OF) == {
        P.DATA_READY: "signals",
        P.SIGNALS_DONE: "universes",
        P.UNIVERSES_DONE: "books",
    }
    assert frozenset(TASK_OF) == WORKABLE
    assert NEXT[P.DATA_READY] is P.SIGNALS_DONE
    assert NEXT[P.UNIVERSES_DONE] is P.COMPLETED
    assert not TERMINAL & set(NEXT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DATA_READY", P.DATA_READY),
        ("data_ready", P.DATA_READY),
        ("  Completed ", P.COMPLETED),
        ("failed", P.FAILED),
    ],
)
def test_parse_phase_accepts_any_case_and_spaces(text: str, expected: Phase) -> None:
    assert parse_phase(text) is expected


@pytest.mark.parametrize("text", ["", "DONE", "DATA-READY", "WAITING"])
def test_parse_phase_rejects_unknown_names_as_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="unknown phase") as caught:
        parse_phase(text)
    assert caught.value.exit_code == 2
    assert "WAITING_FOR_DATA" in str(caught.value)  # the message lists what is valid


@pytest.mark.parametrize(
    ("failures", "expected_s"),
    [(1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 320), (7, 640), (8, 900), (9, 900)],
)
def test_retry_delay_is_base_times_two_to_the_n_minus_one_capped(
    failures: int, expected_s: int
) -> None:
    assert retry_delay(failures, timedelta(seconds=10)) == timedelta(seconds=expected_s)


def test_retry_delay_cap_is_fifteen_minutes() -> None:
    assert timedelta(minutes=15) == RETRY_CAP
    assert retry_delay(1, timedelta(hours=1)) == timedelta(minutes=15)


def test_retry_delay_survives_huge_attempt_counts() -> None:
    assert retry_delay(10_000, timedelta(seconds=10)) == RETRY_CAP


def test_retry_delay_honours_an_explicit_cap_and_zero_base() -> None:
    assert retry_delay(3, timedelta(seconds=1), cap=timedelta(seconds=3)) == timedelta(seconds=3)
    assert retry_delay(5, timedelta(0)) == timedelta(0)


def test_no_failures_means_no_wait() -> None:
    assert retry_delay(0, timedelta(seconds=10)) == timedelta(0)
