"""The rule behind `--force` of `runs ensure` and `ingest prices`, checked against the real
XNYS calendar, seen from a fixed "today" (TODAY), so these hold whenever they run."""

from __future__ import annotations

from datetime import date

import pytest

from prometheus.calendar import TradingCalendar, UnknownRegion
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
        require_trading_day(CAL, day, "US", force=False, today=TODAY, doing="ensure the run")
    assert str(refused.value) == (
        f"{day.isoformat()} ({weekday}) is not a trading day for US (XNYS); "
        "pass --force to ensure the run anyway"
    )
    assert isinstance(refused.value, InputError)  # exit 2 at the CLI
    assert refused.value.exit_code == 2


def test_force_turns_the_refusal_into_a_warning() -> None:
    warning = require_trading_day(CAL, THANKSGIVING, "US", force=True, today=TODAY, doing="x")
    assert warning == (
        "2026-11-26 (Thursday) is not a trading day for US (XNYS); going ahead (--force)"
    )


@pytest.mark.parametrize("force", [False, True])
def test_a_session_needs_nothing_half_day_included(force: bool) -> None:
    for day, region in ((HALF_DAY, "US"), (date(2026, 11, 24), "us")):
        assert require_trading_day(CAL, day, region, force=force, today=TODAY, doing="x") is None


@pytest.mark.parametrize("force", [False, True])
def test_a_region_without_an_exchange_is_refused_even_with_force(force: bool) -> None:
    with pytest.raises(UnknownRegion) as refused:
        require_trading_day(CAL, date(2026, 11, 24), "ZZ", force=force, today=TODAY, doing="x")
    assert str(refused.value).startswith("unknown region 'ZZ'; known regions: EU, JP, UK, US")
    assert refused.value.exit_code == 2


def test_the_region_map_decides_which_exchange_is_asked() -> None:
    # US Thanksgiving is a normal London session.
    london = TradingCalendar({"US": "XLON"})
    assert (
        require_trading_day(london, THANKSGIVING, "US", force=False, today=TODAY, doing="x") is None
    )


@pytest.mark.parametrize(
    "day",
    [date(1990, 1, 2), date(2028, 1, 3), date(2090, 1, 2)],
    ids=["long ago", "a year typo", "far ahead"],
)
def test_outside_the_calendar_is_refused_unless_forced(day: date) -> None:
    problem = (
        f"{day.isoformat()} is outside the XNYS calendar (2006-12-01..2027-12-02), "
        "so nothing says US trades then"
    )
    with pytest.raises(NotATradingDay) as refused:
        require_trading_day(CAL, day, "US", force=False, today=TODAY, doing="ensure the run")
    assert str(refused.value) == f"{problem}; pass --force to ensure the run anyway"
    warning = require_trading_day(CAL, day, "US", force=True, today=TODAY, doing="x")
    assert warning == f"{problem}; going ahead (--force)"


def test_the_range_moves_with_today_not_with_the_process() -> None:
    """A date past a year after one today is inside the range a year later: the range is
    the caller's today's, not fixed when the calendar (or the process) started."""
    later = date(2028, 1, 3)  # a Monday, a session, more than a year after TODAY
    with pytest.raises(NotATradingDay):
        require_trading_day(CAL, later, "US", force=False, today=TODAY, doing="x")
    assert (
        require_trading_day(CAL, later, "US", force=False, today=date(2027, 12, 1), doing="x")
        is None
    )
    assert CAL.bounds("US", date(2030, 6, 1)) == (date(2010, 6, 1), date(2031, 6, 2))
