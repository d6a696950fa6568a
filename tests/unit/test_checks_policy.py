"""`check` policy: --stuck-after parsing, policy validation, wording (no database)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from prometheus.checks import (
    STUCK_PHASES,
    CheckPolicy,
    StuckAfter,
    human,
    parse_stuck_after,
    stuck_limits,
)
from prometheus.cli.ops import session_range
from prometheus.errors import InputError
from prometheus.pipeline.phases import Phase


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", StuckAfter(timedelta(hours=2))),
        ("90", StuckAfter(timedelta(seconds=90))),
        ("1d", StuckAfter(timedelta(days=1))),
        ("SIGNALS_DONE=30m", StuckAfter(timedelta(minutes=30), Phase.SIGNALS_DONE)),
        ("data_ready=45s", StuckAfter(timedelta(seconds=45), Phase.DATA_READY)),
        ("UNIVERSES_DONE=3h", StuckAfter(timedelta(hours=3), Phase.UNIVERSES_DONE)),
    ],
)
def test_stuck_after_is_a_default_or_a_phase_limit(text: str, expected: StuckAfter) -> None:
    assert parse_stuck_after(text) == expected


def test_waiting_for_data_has_no_stuck_limit_and_the_error_says_what_to_use() -> None:
    with pytest.raises(InputError, match="--data-late-after"):
        parse_stuck_after("WAITING_FOR_DATA=1h")


@pytest.mark.parametrize("text", ["COMPLETED=1h", "FAILED=1h"])
def test_terminal_phases_have_no_stuck_limit(text: str) -> None:
    with pytest.raises(InputError, match="applies only to DATA_READY, SIGNALS_DONE"):
        parse_stuck_after(text)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("SOON=1h", "unknown phase 'SOON'"),
        ("=1h", "unknown phase ''"),
        ("SIGNALS_DONE=soon", "invalid duration 'soon'"),
        ("two hours", "invalid duration 'two hours'"),
        ("-5m", "invalid duration '-5m'"),
    ],
)
def test_malformed_stuck_after_names_the_bad_part(text: str, error: str) -> None:
    with pytest.raises(InputError, match=error):
        parse_stuck_after(text)


def test_no_stuck_after_means_the_spec_default_for_every_phase() -> None:
    default, by_phase = stuck_limits([])
    assert default == timedelta(hours=2)
    assert by_phase == {}


def test_repeated_stuck_after_combines_the_default_and_phase_limits() -> None:
    items = [parse_stuck_after(t) for t in ("30m", "UNIVERSES_DONE=4h", "DATA_READY=5m")]
    default, by_phase = stuck_limits(items)
    assert default == timedelta(minutes=30)
    assert by_phase == {
        Phase.UNIVERSES_DONE: timedelta(hours=4),
        Phase.DATA_READY: timedelta(0, 300),
    }
    policy = CheckPolicy(stuck_after=default, stuck_after_by_phase=by_phase)
    assert [policy.stuck_limit(p) for p in STUCK_PHASES] == [
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=4),
    ]


@pytest.mark.parametrize(
    ("texts", "error"),
    [
        (["1h", "2h"], "DURATION given twice"),
        (["SIGNALS_DONE=1h", "signals_done=2h"], "SIGNALS_DONE=... given twice"),
    ],
)
def test_the_same_limit_given_twice_is_refused(texts: list[str], error: str) -> None:
    with pytest.raises(InputError, match=error):
        stuck_limits([parse_stuck_after(t) for t in texts])


def test_policy_defaults_are_the_spec_defaults() -> None:
    policy = CheckPolicy()
    assert policy.stuck_after == timedelta(hours=2)
    assert policy.window == timedelta(hours=24)
    assert policy.max_failures == 0
    assert policy.data_late_after == timedelta(hours=4)
    assert policy.reactor_silent_after == timedelta(minutes=2)
    assert policy.require_reactor is False
    assert all(policy.stuck_limit(p) == timedelta(hours=2) for p in STUCK_PHASES)


def test_policy_keeps_its_own_copy_of_the_phase_limits() -> None:
    limits = {Phase.SIGNALS_DONE: timedelta(minutes=10)}
    policy = CheckPolicy(stuck_after_by_phase=limits)
    limits[Phase.SIGNALS_DONE] = timedelta(days=9)
    limits[Phase.DATA_READY] = timedelta(days=9)
    assert policy.stuck_limit(Phase.SIGNALS_DONE) == timedelta(minutes=10)
    assert policy.stuck_limit(Phase.DATA_READY) == timedelta(hours=2)
    with pytest.raises(TypeError):
        policy.stuck_after_by_phase[Phase.DATA_READY] = timedelta(0)  # type: ignore[index]  # read-only on purpose


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"stuck_after": timedelta(0)}, "--stuck-after must be longer than 0s"),
        ({"window": timedelta(0)}, "--window must be longer than 0s"),
        ({"reactor_silent_after": timedelta(0)}, "--reactor-silent-after must be longer"),
        ({"stuck_after_by_phase": {Phase.DATA_READY: timedelta(0)}}, "DATA_READY must be longer"),
        ({"stuck_after_by_phase": {Phase.WAITING_FOR_DATA: timedelta(1)}}, "not WAITING_FOR_DATA"),
        ({"data_late_after": timedelta(seconds=-1)}, "--data-late-after must not be negative"),
        ({"max_failures": -1}, "--max-failures must not be negative"),
    ],
)
def test_policy_refuses_limits_that_cannot_mean_anything(
    kwargs: dict[str, object], error: str
) -> None:
    with pytest.raises(InputError, match=error):
        CheckPolicy(**kwargs)  # type: ignore[arg-type]  # each case passes one valid field


def test_zero_data_late_after_means_late_at_the_close() -> None:
    assert CheckPolicy(data_late_after=timedelta(0)).data_late_after == timedelta(0)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=2), "2m"),
        (timedelta(minutes=7, seconds=5), "7m05s"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=2, seconds=1), "2h00m"),
        (timedelta(days=1, seconds=1), "1d0h"),
        (timedelta(hours=3, minutes=5, seconds=59), "3h05m"),
        (timedelta(days=1), "1d"),
        (timedelta(days=2, hours=4, minutes=30), "2d4h"),
        (timedelta(seconds=-3), "0s"),
    ],
)
def test_ages_read_as_the_two_largest_units(delta: timedelta, text: str) -> None:
    assert human(delta) == text


@pytest.mark.parametrize(
    ("start", "end", "today", "expected"),
    [
        (None, None, date(2026, 11, 26), (date(2026, 11, 1), date(2026, 11, 30))),
        (None, None, date(2026, 12, 31), (date(2026, 12, 1), date(2026, 12, 31))),
        (None, None, date(2028, 2, 10), (date(2028, 2, 1), date(2028, 2, 29))),
        (date(2026, 11, 23), None, date(2027, 5, 1), (date(2026, 11, 23), date(2026, 11, 30))),
        (None, date(2026, 12, 5), date(2027, 5, 1), (date(2026, 12, 1), date(2026, 12, 5))),
        (
            date(2026, 1, 2),
            date(2026, 3, 4),
            date(2027, 5, 1),
            (date(2026, 1, 2), date(2026, 3, 4)),
        ),
    ],
)
def test_calendar_range_defaults_to_the_month_of_the_given_bound(
    start: date | None, end: date | None, today: date, expected: tuple[date, date]
) -> None:
    assert session_range(start, end, today=today) == expected


def test_calendar_range_refuses_from_after_to() -> None:
    with pytest.raises(InputError, match="--from 2026-11-30 is after --to 2026-11-23"):
        session_range(date(2026, 11, 30), date(2026, 11, 23), today=date(2026, 11, 26))
