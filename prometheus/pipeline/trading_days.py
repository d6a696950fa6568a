"""Whether work may be asked for by hand on a date: the rule behind ``--force``.

A run (or a day's prices) for a day the region's exchange does not trade (a holiday, a
weekend) is almost always a mistake: a cron job computing "today", a typo. So is a date
the calendar cannot vouch for, outside the range it vouches for as seen from ``today``
(a year typo, a date decades back): such a run would sit in WAITING_FOR_DATA forever,
and prices loaded for it feed nothing. Both need ``--force``. A region that maps to no
exchange is refused outright: no flag makes it known (SPEC section 3).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from prometheus.calendar import TradingCalendar
from prometheus.errors import NotATradingDay


def calendar_today() -> date:
    """The day that places the calendar's range for work asked for by hand: the host's
    date, in UTC. The range spans years, so a host clock some minutes off changes nothing
    here; whatever is compared with the runs' own times (backoff, stuck runs, calendar
    runs) reads the database's now() instead."""
    return datetime.now(UTC).date()


def require_trading_day(
    calendar: TradingCalendar, day: date, region: str, *, force: bool, today: date, doing: str
) -> str | None:
    """None when ``day`` is a session of ``region``'s exchange; a warning to show when
    ``force`` overrides a refusal. ``doing`` names what is asked ("ensure the run").

    Raises UnknownRegion for a region with no exchange (whatever ``force`` says), and
    NotATradingDay when ``day`` is not a session or is outside the calendar's range and
    ``force`` is False.
    """
    exchange = calendar.exchange(region)
    first, last = calendar.bounds(region, today)
    if not first <= day <= last:
        problem = (
            f"{day.isoformat()} is outside the {exchange} calendar "
            f"({first.isoformat()}..{last.isoformat()}), so nothing says {region} trades then"
        )
    elif calendar.is_session(region, day):
        return None
    else:
        problem = f"{day.isoformat()} ({day:%A}) is not a trading day for {region} ({exchange})"
    if not force:
        raise NotATradingDay(f"{problem}; pass --force to {doing} anyway")
    return f"{problem}; going ahead (--force)"
