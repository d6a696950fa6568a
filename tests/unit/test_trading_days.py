"""The rule behind `runs ensure --force`, checked against the real XNYS calendar, seen from
a fixed "today" (TODAY), so these hold whenever they run."""

from __future__ import annotations

from datetime import date

import pytest

from prometheus.calendar import TradingCalendar
from prometheus.errors import InputError, NotATradingDay
from prometheus.pipeline.trading_days import require_trading_day

CAL = TradingCalendar()
THANKSGIVING = date(2026, 11, 26)
SATURDAY = date(2026, 11, 28)
HALF_DAY = date(2026, 11, 27)
TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(("day", "weekday"), [(THANKSGIVING, "Thursday"), (SATURDAY, "Saturday")])
def test_a_holiday_or_weekend_is_refused_without_force(day: date, weekday: str) -> None:
    with pytest.raises(NotATradingDay) as refused:
        require_trading_day(CAL, day, "US", force=False, today=TODAY)
    assert str(refused.value) == (
        f"{day.isoformat()} ({weekday}) is not a trading day for US (XNYS); "
        "pass --force to ensure the run anyway"
    )
    assert isinstance(refused.value, InputError)  # exit 2 at the CLI
    assert refused.value.exit_code == 2


def test_force_turns_the_refusal_into_a_warning() -> None:
    warning = require_trading_day(CAL, THANKSGIVING, "US", force=True, today=TODAY)
    assert warning == (
        "2026-11-26 (Thursday) is not a trading day for US (XNYS); "
        "ensuring the run anyway (--force)"
    )


@pytest.mark.parametrize("force", [False, True])
def test_a_session_needs_nothing_half_day_included(force: bool) -> None:
    assert require_trading_day(CAL, HALF_DAY, "US", force=force, today=TODAY) is None
    assert require_trading_day(CAL, date(2026, 11, 24), "us", force=force, today=TODAY) is None


def test_a_region_without_a_calendar_is_the_operators_schedule() -> None:
    assert require_trading_day(CAL, SATURDAY, "ZZ", force=False, today=TODAY) is None


def test_the_region_map_decides_which_exchange_is_asked() -> None:
    # US Thanksgiving is a normal London session.
    london = TradingCalendar({"US": "XLON"})
    assert require_trading_day(london, THANKSGIVING, "US", force=False, today=TODAY) is None


@pytest.mark.parametrize("day", [date(1990, 1, 2), date(2028, 1, 3), date(2090, 1, 2)])
def test_outside_the_calendar_it_cannot_tell_so_it_warns_and_allows(day: date) -> None:
    warning = require_trading_day(CAL, day, "US", force=False, today=TODAY)
    assert warning is not None
    assert warning.startswith(f"{day.isoformat()} is outside the XNYS calendar (")
    assert warning.endswith("): cannot tell whether US trades")


def test_the_range_moves_with_today_not_with_the_process() -> None:
    """A date past a year after one today is inside the range a year later: the range is
    the caller's today's, not fixed when the calendar (or the process) started."""
    later = date(2028, 1, 3)  # a Monday, a session, more than a year after TODAY
    assert require_trading_day(CAL, later, "US", force=False, today=TODAY) is not None
    assert require_trading_day(CAL, later, "US", force=False, today=date(2027, 12, 1)) is None
    assert CAL.bounds("US", date(2030, 6, 1)) == (date(2010, 6, 1), date(2031, 6, 2))
