"""Trading calendar: which exchange sessions exist per region, and when they close.

Built on ``exchange_calendars``. The library is imported lazily (it pulls in pandas and
builds holiday tables), and each exchange's calendar object is kept for the process,
because building one costs ~0.1 s.

A calendar object only knows the sessions of the window it was built for (by default
about 20 years before to 1 year after the moment it is built). A reactor runs for years,
so the window is keyed on the dates asked for, never on when the process started: a
question about a date outside the loaded window rebuilds it to cover that date and a
year beyond (``LOAD_AHEAD``), so the next year's questions find it loaded. What the
calendar vouches for is a separate question, asked relative to a day the caller names:
``bounds(region, today)``.
"""

from __future__ import annotations

import functools
import threading
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

#: The range the calendar vouches for around "today", as the library's own default window:
#: before it, exchanges' early histories are patchy; after it, closures are not announced.
TRUSTED_YEARS_BACK = 20
TRUSTED_AHEAD = timedelta(days=366)
#: How far past the latest date asked for a rebuilt window reaches, so that a reactor
#: rebuilds about once a year, not every day.
LOAD_AHEAD = timedelta(days=366)
#: Dates pandas (nanosecond timestamps, up to 2262) and the holiday rules can handle; a
#: question beyond them (a year typo such as 20226) finds no sessions instead of failing.
EARLIEST = date(1900, 1, 1)
LATEST = date(2200, 12, 31)


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
        super().__init__(
            f"unknown region {region!r}; known regions: {', '.join(known)}"
            " (PROMETHEUS_REGION_EXCHANGES maps regions to exchanges)"
        )
        self.region = region


@dataclass(frozen=True)
class _Window:
    """An exchange_calendars object and the dates it was built for."""

    start: date
    end: date
    limits: tuple[date, date]  # what the exchange's calendar class can be built for at all
    calendar: Any  # ExchangeCalendar; the library ships no type info


class _Windows:
    """Each exchange's calendar object, over a window that grows to cover every date asked
    for. Shared by every TradingCalendar of the process (the reactor's threads included):
    an answer depends only on the dates asked, whatever was loaded before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, _Window] = {}

    def covering(self, exchange: str, lo: date, hi: date) -> _Window:
        """A window holding every session from ``lo`` to ``hi`` that the library can know."""
        with self._lock:
            window = self._loaded.get(exchange) or _default_window(exchange)
            first, last = window.limits
            lo, hi = max(lo, first), min(hi, last)
            if lo <= hi and not window.start <= lo <= hi <= window.end:
                start = min(window.start, lo)
                end = min(max(window.end, hi + LOAD_AHEAD), last)
                window = _Window(start, end, window.limits, _build(exchange, start, end))
            self._loaded[exchange] = window
            return window


def _default_window(exchange: str) -> _Window:
    """The library's default calendar: it names the exchange's class (and so its limits),
    and covers what most questions ask about."""
    cal = _build(exchange, None, None)
    kind = type(cal)
    first = max(EARLIEST, _day(kind.bound_min()) or EARLIEST)
    last = min(LATEST, _day(kind.bound_max()) or LATEST)
    return _Window(cal.first_session.date(), cal.last_session.date(), (first, last), cal)


def _build(exchange: str, start: date | None, end: date | None) -> Any:
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
            return exchange_calendars.get_calendar(
                exchange,
                start=start.isoformat() if start else None,
                end=end.isoformat() if end else None,
            )
        except InvalidCalendarName:
            # A typo in PROMETHEUS_REGION_EXCHANGES is bad configuration: one line, exit 2.
            raise InputError(
                f"unknown exchange calendar {exchange!r} (check PROMETHEUS_REGION_EXCHANGES)"
            ) from None


_WINDOWS = _Windows()


def _day(ts: Any) -> date | None:
    return None if ts is None else ts.date()


@functools.lru_cache(maxsize=1024)
def _sessions(
    window: _Window, region: str, exchange: str, lo: date, hi: date
) -> tuple[Session, ...]:
    """The sessions from ``lo`` to ``hi`` (inside ``window``), read from its calendar.

    Cached: reading them is pandas work (about 1 ms for one day, 10 ms for a year) that
    `check` repeats for every waiting run and the web console on every refresh, while the
    answer depends only on the window's calendar object (part of the key) and the dates.
    """
    cal = window.calendar
    # Series indexed by tz-naive session labels; label slicing is inclusive.
    opens = cal.opens.loc[lo.isoformat() : hi.isoformat()]
    closes = cal.closes.loc[lo.isoformat() : hi.isoformat()]
    early = cal.early_closes
    return tuple(
        Session(
            region=region,
            exchange=exchange,
            date=label.date(),
            open=_utc(opens[label]),
            close=_utc(closes[label]),
            half_day=bool(label in early),
        )
        for label in closes.index
    )


def _utc(ts: Any) -> datetime:
    """Convert a pandas UTC Timestamp to a stdlib datetime in ``datetime.UTC``."""
    result: datetime = ts.to_pydatetime().astimezone(UTC)
    return result


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def lookback_start(now: datetime, lookback: timedelta) -> date:
    """The earliest session date ``closed_sessions(region, now, lookback)`` can return.

    Those who must stay clear of what the calendar hands out (a purge must not delete a
    run the reactor's calendar would create again) ask this, not their own arithmetic.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("closed_sessions() needs a tz-aware 'now'; got a naive datetime")
    return (now.astimezone(UTC) - lookback).date()


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

    def bounds(self, region: str, today: date) -> tuple[date, date]:
        """The dates the calendar vouches for, seen from ``today`` (the library's default
        window, from the caller's day rather than the process's start): outside them it
        cannot tell a holiday from a trading day."""
        first, last = _WINDOWS.covering(self.exchange(region), today, today).limits
        return (
            max(first, _years_before(today, TRUSTED_YEARS_BACK)),
            min(last, today + TRUSTED_AHEAD),
        )

    def sessions(self, region: str, start: date, end: date) -> list[Session]:
        """Sessions with ``start <= date <= end``, ordered; dates the library cannot build
        a calendar for (before EARLIEST or the exchange's first, after LATEST) have none."""
        region = region.upper()
        exchange = self.exchange(region)
        if start > end:
            return []
        window = _WINDOWS.covering(exchange, start, end)
        lo, hi = max(start, window.start), min(end, window.end)
        if lo > hi:
            return []
        return list(_sessions(window, region, exchange, lo, hi))

    def session(self, region: str, day: date) -> Session | None:
        """The session on ``day``; None if the exchange is closed that day."""
        found = self.sessions(region, day, day)
        return found[0] if found else None

    def is_session(self, region: str, day: date) -> bool:
        """Whether the region's exchange trades on ``day``."""
        return self.session(region, day) is not None

    def closed_sessions(
        self, region: str, now: datetime, lookback: timedelta = timedelta(days=7)
    ) -> list[Session]:
        """Sessions dated within ``lookback`` before ``now`` whose close is ``<= now``.

        A daemon uses this to create runs for sessions that have finished; a session
        still trading at ``now`` is excluded so its data is never treated as final.
        """
        now_utc = now.astimezone(UTC)
        start = lookback_start(now, lookback)
        # +1 day: a session labelled tomorrow (UTC) can never have closed, but be safe.
        candidates = self.sessions(region, start, now_utc.date() + timedelta(days=1))
        return [s for s in candidates if s.close <= now_utc]

    def previous_session(self, region: str, day: date) -> date:
        """The latest session date ``<= day``; ValueError if there is none the library knows."""
        exchange = self.exchange(region)
        window = _WINDOWS.covering(exchange, day - timedelta(days=31), day)
        if not window.start <= day <= window.end:
            raise ValueError(f"{day.isoformat()} is outside what the {exchange} calendar can tell")
        label: Any = window.calendar.date_to_session(day.isoformat(), direction="previous")
        result: date = label.date()
        return result
