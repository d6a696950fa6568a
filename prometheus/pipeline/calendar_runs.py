"""Which runs the trading calendar asks for: one run per closed session of every region
that requires datasets, over the last few days.

A run created WAITING_FOR_DATA for a session that has closed makes late data visible
(`prometheus check` measures DATA_LATE from its close). This is a workflow rule, so it
lives with the state machine; the reactor's calendar service only decides when to apply
it. Decisions use the database's clock, like backoff and stuck checks.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar, UnknownRegion, lookback_start
from prometheus.db.queries import query
from prometheus.errors import InputError

CALENDAR_LOOKBACK = timedelta(days=4)  # covers a long weekend of reactor downtime


def earliest_calendar_date(now: datetime) -> date:
    """The earliest date for which the calendar service (re)creates a missing run at
    ``now``. A run dated on or after it that is deleted comes back at the next round, and
    where its data is complete the engine runs it again: retention stays before it."""
    return lookback_start(now, CALENDAR_LOOKBACK)


def ensure_calendar_runs(
    db: Engine, calendar: TradingCalendar, *, actor: str, now: datetime | None = None
) -> int:
    """Create the missing runs for sessions closed by ``now`` (default: the database's
    now()); return how many were created. Safe to repeat, from any number of reactors.

    A region whose exchange calendar cannot be built (a typo in the configuration) does
    not hold up the others: their runs are created, then InputError names it.
    """
    unusable: list[str] = []
    with db.begin() as conn:
        if now is None:
            now = conn.execute(query("database_now")).scalar_one()
        assert now is not None
        pairs = []
        for region in conn.execute(query("calendar_regions")).scalars():
            try:
                sessions = calendar.closed_sessions(region, now, CALENDAR_LOOKBACK)
            except UnknownRegion:
                continue  # no exchange for the region: its schedule is the operator's
            except InputError as exc:
                unusable.append(f"{region}: {exc}")
                continue
            pairs += [(session.date, region) for session in sessions]
        created = 0
        if pairs:
            created = conn.execute(
                query("ensure_runs"),
                {"dates": [d for d, _ in pairs], "regions": [r for _, r in pairs], "actor": actor},
            ).scalar_one()
    if unusable:
        raise InputError(f"no calendar runs for {'; '.join(unusable)}")
    return created
