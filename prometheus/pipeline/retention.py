"""Retention on purpose: ``prometheus runs purge --before D --reason R``.

The run table and its audit trail refuse every DELETE, so history cannot be lost by
mistake; forgetting old runs is an explicit, audited act instead. A purge removes the
terminal runs (COMPLETED, FAILED) dated before the cutoff, with their events and their
reference results, and writes one row to ``engine_run_purges`` (who, why, the cutoff,
how many), which outlives what it removed. Active runs are never purged. The rule and
the deletion live in the database (``prometheus_is_purgeable``, ``prometheus_purge_runs``
in sql/triggers/0013_purge.sql); here: what the operator must give, and how recent a
cutoff may be (the reactor's calendar window, whose workflow rule lives beside this one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine

from prometheus.db.queries import query
from prometheus.errors import InputError
from prometheus.pipeline.calendar_runs import earliest_calendar_date


@dataclass(frozen=True)
class Purge:
    """What a purge removed, or (``dry_run``) would remove."""

    before: date
    runs_purged: int
    events_purged: int
    dry_run: bool
    purge_id: int | None  # the engine_run_purges row; None for a dry run


def purge_runs(
    db: Engine, before: date, *, actor: str, reason: str, dry_run: bool = False
) -> Purge:
    """Purge terminal runs dated before ``before``, in one transaction.

    Refused (InputError, nothing written): a blank reason, and a cutoff inside the
    reactor's calendar window (after ``earliest_calendar_date`` of the database's now).
    The calendar service recreates every missing run of a session in that window at each
    round; where the session's data is complete, the new run is DATA_READY at once and
    every phase runs again under a new run_id. That limit also keeps a year typo from
    emptying the table.
    """
    why = reason.strip()
    if not why:
        raise InputError("--reason must say why (it is written to the purge record)")
    with db.begin() as conn:
        now: datetime = conn.execute(query("database_now")).scalar_one()
        latest = earliest_calendar_date(now)
        if before > latest:
            raise InputError(
                f"--before {before.isoformat()} is too recent: the reactor's calendar recreates"
                f" the runs of sessions since {latest.isoformat()} (and runs them again where"
                f" their data is complete); the latest allowed cutoff is {latest.isoformat()}"
            )
        params = {"before": before, "actor": actor, "reason": why}
        if dry_run:
            preview = conn.execute(query("purge_preview"), params).one()
            return Purge(before, preview.runs_purged, preview.events_purged, True, None)
        done = conn.execute(query("purge_runs"), params).one()
        return Purge(before, done.runs_purged, done.events_purged, False, done.purge_id)
