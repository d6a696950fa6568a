"""Whether a run may be created by hand for a date: the rule behind ``runs ensure --force``.

A run for a day the region's exchange does not trade (a holiday, a weekend) is almost
always a mistake (a cron job computing "today", a typo), and it would sit in
WAITING_FOR_DATA forever; so it needs ``--force``. Where the calendar cannot tell (a
region with no exchange mapping, a date outside the range the calendar vouches for as
seen from ``today``) the operator owns the schedule and the run is allowed.
"""

from __future__ import annotations

from datetime import date

from prometheus.calendar import TradingCalendar, UnknownRegion
from prometheus.errors import NotATradingDay


def require_trading_day(
    calendar: TradingCalendar, day: date, region: str, *, force: bool, today: date
) -> str | None:
    """None when ``day`` is a session of ``region`` or the region has no calendar; a
    warning to show when the calendar cannot tell or ``force`` overrides it.

    Raises NotATradingDay when ``day`` is not a session and ``force`` is False.
    """
    try:
        exchange = calendar.exchange(region)
    except UnknownRegion:
        return None
    first, last = calendar.bounds(region, today)
    if not first <= day <= last:
        return (
            f"{day.isoformat()} is outside the {exchange} calendar "
            f"({first.isoformat()}..{last.isoformat()}): cannot tell whether {region} trades"
        )
    if calendar.is_session(region, day):
        return None
    closed = f"{day.isoformat()} ({day:%A}) is not a trading day for {region} ({exchange})"
    if not force:
        raise NotATradingDay(f"{closed}; pass --force to ensure the run anyway")
    return f"{closed}; ensuring the run anyway (--force)"
