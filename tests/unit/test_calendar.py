"""Trading-calendar facts checked against exchange_calendars (no database needed).

Most dates are in late 2026; the calendar answers for any date (it loads the window the
date needs), so these hold whenever they run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from prometheus.calendar import (
    DEFAULT_REGION_EXCHANGES,
    Session,
    TradingCalendar,
    UnknownRegion,
)


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return TradingCalendar()


def test_default_regions_map_to_expected_exchanges(cal: TradingCalendar) -> None:
    assert dict(DEFAULT_REGION_EXCHANGES) == {
        "US": "XNYS",
        "EU": "XETR",
        "UK": "XLON",
        "JP": "XTKS",
    }
    assert cal.regions == ("EU", "JP", "UK", "US")
    assert cal.exchange("us") == "XNYS"


def test_thanksgiving_is_not_a_us_session(cal: TradingCalendar) -> None:
    assert cal.exchange("US") == "XNYS"
    assert not cal.is_session("US", date(2026, 11, 26))
    assert cal.session("US", date(2026, 11, 26)) is None


def test_day_after_thanksgiving_is_a_us_half_day(cal: TradingCalendar) -> None:
    s = cal.session("US", date(2026, 11, 27))
    assert s is not None
    assert s == Session(
        region="US",
        exchange="XNYS",
        date=date(2026, 11, 27),
        open=datetime(2026, 11, 27, 14, 30, tzinfo=UTC),
        close=datetime(2026, 11, 27, 18, 0, tzinfo=UTC),  # 13:00 New York (EST)
        half_day=True,
    )
    assert s.close.utcoffset() == timedelta(0)


def test_regular_us_day_is_not_a_half_day(cal: TradingCalendar) -> None:
    s = cal.session("US", date(2026, 11, 24))
    assert s is not None
    assert s.close == datetime(2026, 11, 24, 21, 0, tzinfo=UTC)  # 16:00 New York
    assert not s.half_day


@pytest.mark.parametrize("region", sorted(DEFAULT_REGION_EXCHANGES))
@pytest.mark.parametrize("day", [date(2026, 11, 28), date(2026, 11, 29)])
def test_weekend_is_not_a_session_anywhere(cal: TradingCalendar, region: str, day: date) -> None:
    assert not cal.is_session(region, day)


def test_christmas_is_not_a_uk_session(cal: TradingCalendar) -> None:
    assert not cal.is_session("UK", date(2026, 12, 25))
    assert cal.is_session("UK", date(2026, 12, 24))


def test_sessions_range_is_inclusive_and_ordered(cal: TradingCalendar) -> None:
    got = cal.sessions("us", date(2026, 11, 20), date(2026, 11, 30))
    assert [s.date for s in got] == [
        date(2026, 11, 20),
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
        date(2026, 11, 27),
        date(2026, 11, 30),
    ]
    assert all(s.region == "US" and s.exchange == "XNYS" for s in got)
    assert [s.half_day for s in got].count(True) == 1


def test_sessions_edge_cases(cal: TradingCalendar) -> None:
    assert cal.sessions("US", date(2026, 11, 30), date(2026, 11, 20)) == []
    clamped = cal.sessions("US", date(1900, 1, 1), date(2200, 1, 1))
    assert clamped, "far bounds are clamped, not rejected"
    assert [s.date for s in clamped] == sorted(s.date for s in clamped)


def test_closed_sessions_respects_close_time(cal: TradingCalendar) -> None:
    before = cal.closed_sessions("US", datetime(2026, 11, 24, 20, 59, tzinfo=UTC))
    at_close = cal.closed_sessions("US", datetime(2026, 11, 24, 21, 0, tzinfo=UTC))
    assert before[-1].date == date(2026, 11, 23)
    assert at_close[-1].date == date(2026, 11, 24)
    assert [s.date for s in at_close][:-1] == [s.date for s in before]
    assert all(s.date >= date(2026, 11, 17) for s in at_close)


def test_closed_sessions_lookback_and_timezones(cal: TradingCalendar) -> None:
    new_york = timezone(timedelta(hours=-5))  # any aware tz works; compared in UTC
    now = datetime(2026, 11, 24, 11, 0, tzinfo=new_york)  # 16:00 UTC, market open
    got = cal.closed_sessions("US", now, lookback=timedelta(days=1))
    assert [s.date for s in got] == [date(2026, 11, 23)]


def test_closed_sessions_refuses_naive_now(cal: TradingCalendar) -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        cal.closed_sessions("US", datetime(2026, 11, 24, 21, 0))


def test_previous_session(cal: TradingCalendar) -> None:
    assert cal.previous_session("US", date(2026, 11, 26)) == date(2026, 11, 25)
    assert cal.previous_session("US", date(2026, 11, 29)) == date(2026, 11, 27)
    assert cal.previous_session("US", date(2026, 11, 27)) == date(2026, 11, 27)


def test_unknown_region(cal: TradingCalendar) -> None:
    with pytest.raises(UnknownRegion, match=r"'XX'.*EU, JP, UK, US"):
        cal.exchange("XX")
    with pytest.raises(ValueError):
        cal.is_session("xx", date(2026, 11, 24))


def test_custom_region_map() -> None:
    cal = TradingCalendar({"ch": "XSWX"})
    assert cal.regions == ("CH",)
    assert cal.exchange("ch") == "XSWX"
    with pytest.raises(UnknownRegion):
        cal.exchange("US")


def _thanksgiving(year: int) -> date:
    """The fourth Thursday of November: an NYSE holiday, and the next day a half day."""
    first = date(year, 11, 1)
    return first + timedelta(days=(3 - first.weekday()) % 7 + 21)


def test_the_window_moves_with_the_dates_asked_for(cal: TradingCalendar) -> None:
    """A process that has loaded today's calendar still knows, years later, which days
    trade: what the library loaded first (to about a year from now) is not the end."""
    today = datetime.now(UTC).date()
    assert cal.is_session("US", date(2026, 11, 24))  # loaded the first window
    year = today.year + 3  # well past the first window's end
    holiday = _thanksgiving(year)
    half_day = cal.session("US", holiday + timedelta(days=1))
    assert not cal.is_session("US", holiday)
    assert half_day is not None and half_day.half_day
    assert cal.is_session("US", holiday - timedelta(days=3))  # the Monday before

    # What a reactor asks every sweep: the sessions that closed lately, years from now.
    now = datetime.combine(holiday + timedelta(days=4), time(12), tzinfo=UTC)  # Monday noon
    closed = [s.date for s in cal.closed_sessions("US", now, lookback=timedelta(days=7))]
    assert closed == [
        holiday - timedelta(days=3),
        holiday - timedelta(days=2),
        holiday - timedelta(days=1),
        holiday + timedelta(days=1),
    ]


def test_a_date_beyond_what_the_library_can_build_has_no_sessions(cal: TradingCalendar) -> None:
    assert cal.sessions("US", date(9998, 1, 1), date(9999, 12, 31)) == []
    assert cal.session("US", date(9999, 1, 4)) is None
    assert cal.is_session("US", date(2026, 11, 24))  # and the calendar still works
