"""Trading calendar: which exchange sessions exist per region, and when they close.

Built on ``exchange_calendars``. The library is imported lazily (it pulls in
pandas and builds holiday tables), and each exchange's calendar object is
cached because constructing one costs ~0.1 s. The library only knows sessions
between roughly 20 years before and 1 year after the moment the calendar object
was built; range queries are clamped to that window instead of raising.
"""

from __future__ import annotations

import functools
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prometheus.errors import InputError

DEFAULT_REGION_EXCHANGES: Mapping[str, str] = types.MappingProxyType(
    {"US": "XNYS", "EU": "XETR", "UK": "XLON", "JP": "XTKS"}
)


@dataclass(frozen=True)
class Session:
    """One trading session; ``open``/``close`` are tz-aware UTC datetimes."""

    region: str
    exchange: str
    date: date
    open: datetime
    close: datetime
    half_day: bool  # closes earlier than the exchange's prevailing regular close


class UnknownRegion(InputError, ValueError):
    """A region code that is not mapped to any exchange.

    An InputError, so the CLI exits 2 with one line; still a ValueError for callers that
    treat it as a bad value.
    """

    def __init__(self, region: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown region {region!r}; known regions: {', '.join(known)}")
        self.region = region


@functools.cache  # unbounded lru_cache: a handful of exchanges at most
def _calendar(exchange: str) -> Any:  # ExchangeCalendar; the library ships no type info
    """Build (once per process) the exchange_calendars object for ``exchange``."""
    import exchange_calendars
    from exchange_calendars.errors import InvalidCalendarName

    # exchange_calendars 4.13 uses pandas API that pandas >= 3.1 deprecates while it builds
    # a schedule (tz-aware ``Series.values`` for every exchange, ``DatetimeIndex.weekday``
    # for XHKG and others). Not ours to fix, and not the operator's business; under
    # pytest's ``filterwarnings = error`` it would make those calendars unusable. Only the
    # build is covered: later deprecations still surface.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        try:
            return exchange_calendars.get_calendar(exchange)
        except InvalidCalendarName:
            # A typo in PROMETHEUS_REGION_EXCHANGES is bad configuration: one line, exit 2.
            raise InputError(
                f"unknown exchange calendar {exchange!r} (check PROMETHEUS_REGION_EXCHANGES)"
            ) from None


def _utc(ts: Any) -> datetime:
    """Convert a pandas UTC Timestamp to a stdlib datetime in ``datetime.UTC``."""
    result: datetime = ts.to_pydatetime().astimezone(UTC)
    return result


class TradingCalendar:
    """Region-level view over exchange calendars (region code -> exchange MIC)."""

    def __init__(self, region_exchanges: Mapping[str, str] = DEFAULT_REGION_EXCHANGES) -> None:
        # Keys are upper-cased like every region argument, so lookups always match.
        self._map: Mapping[str, str] = types.MappingProxyType(
            {region.upper(): exchange for region, exchange in region_exchanges.items()}
        )

    @property
    def regions(self) -> tuple[str, ...]:
        """Known region codes, sorted so output is deterministic."""
        return tuple(sorted(self._map))

    def exchange(self, region: str) -> str:
        """Exchange MIC for ``region`` (case-insensitive input); UnknownRegion otherwise."""
        try:
            return self._map[region.upper()]
        except KeyError:
            raise UnknownRegion(region, self.regions) from None

    def bounds(self, region: str) -> tuple[date, date]:
        """First and last session the library knows for ``region``; outside them it cannot
        tell a holiday from a trading day."""
        cal = _calendar(self.exchange(region))
        return cal.first_session.date(), cal.last_session.date()

    def sessions(self, region: str, start: date, end: date) -> list[Session]:
        """Sessions with ``start <= date <= end``, ordered, clamped to the library's bounds."""
        region = region.upper()
        exchange = self.exchange(region)
        if start > end:
            return []
        cal = _calendar(exchange)
        lo = max(start, cal.first_session.date())
        hi = min(end, cal.last_session.date())
        if lo > hi:
            return []
        # Series indexed by tz-naive session labels; label slicing is inclusive.
        opens = cal.opens.loc[lo.isoformat() : hi.isoformat()]
        closes = cal.closes.loc[lo.isoformat() : hi.isoformat()]
        early = cal.early_closes
        return [
            Session(
                region=region,
                exchange=exchange,
                date=label.date(),
                open=_utc(opens[label]),
                close=_utc(closes[label]),
                half_day=bool(label in early),
            )
            for label in closes.index
        ]

    def session(self, region: str, day: date) -> Session | None:
        """The session on ``day``; None if closed that day or ``day`` is out of bounds."""
        found = self.sessions(region, day, day)
        return found[0] if found else None

    def is_session(self, region: str, day: date) -> bool:
        """Whether the region's exchange trades on ``day`` (False outside the library's bounds)."""
        return self.session(region, day) is not None

    def closed_sessions(
        self, region: str, now: datetime, lookback: timedelta = timedelta(days=7)
    ) -> list[Session]:
        """Sessions dated within ``lookback`` before ``now`` whose close is ``<= now``.

        A daemon uses this to create runs for sessions that have finished; a session
        still trading at ``now`` is excluded so its data is never treated as final.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("closed_sessions() needs a tz-aware 'now'; got a naive datetime")
        now_utc = now.astimezone(UTC)
        start = (now_utc - lookback).date()
        # +1 day: a session labelled tomorrow (UTC) can never have closed, but be safe.
        candidates = self.sessions(region, start, now_utc.date() + timedelta(days=1))
        return [s for s in candidates if s.close <= now_utc]

    def previous_session(self, region: str, day: date) -> date:
        """The latest session date ``<= day``; ValueError if ``day`` is outside the bounds."""
        cal = _calendar(self.exchange(region))
        first, last = cal.first_session.date(), cal.last_session.date()
        if not first <= day <= last:
            raise ValueError(
                f"{day.isoformat()} is outside the {cal.name} calendar bounds "
                f"{first.isoformat()}..{last.isoformat()}"
            )
        label: Any = cal.date_to_session(day.isoformat(), direction="previous")
        result: date = label.date()
        return result
