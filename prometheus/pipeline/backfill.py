"""Backfills: every market session of a range gets its run, and runs are redone on request.

``prometheus backfill --from D1 --to D2 --region R [--reprocess none|failed|all]``. The
rule is ``plan_backfill``, a pure function of the sessions (from the trading calendar)
and the runs that exist: a session without a run gets one (created WAITING_FOR_DATA, it
starts when its data is complete, at once if it is: the readiness triggers do that); with
``--reprocess failed`` a FAILED run is sent back to redo its whole pipeline, with ``all``
a COMPLETED one too; everything else is left as it is. A run is redone from its first
phase because the phase tasks are idempotent (a rerun writes the same rows, never more),
and through the audited force path (``overrides.restart``): each reset is an audit event
with the operator and the reason.

Safe to repeat: what a backfill created exists the second time, and the reason names a
reprocessing request, so a run already reset for that reason is not reset again (a
second run of the same command changes nothing; a new reason redoes the range again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.db.queries import query
from prometheus.errors import InputError
from prometheus.pipeline import overrides
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.reads import Database, transaction

OVERRIDE = "backfill"  # how its resets are named in the audit trail
RESET_LOCK_TIMEOUT_MS = 5000  # a run to reset is terminal: only a moment's claim holds it


class Reprocess(StrEnum):
    NONE = "none"  # create what is missing, redo nothing
    FAILED = "failed"  # and redo FAILED runs
    ALL = "all"  # and redo COMPLETED runs too


class Action(StrEnum):
    CREATE = "create"
    RESET = "reset"
    LEAVE = "leave"


@dataclass(frozen=True)
class ExistingRun:
    """A run of the range as it is, and whether a backfill with this request's reason has
    reset it already."""

    run_id: int
    as_of_date: date
    region: str
    phase: Phase
    reprocessed: bool = False


@dataclass(frozen=True)
class PlannedRun:
    as_of_date: date
    region: str
    action: Action
    why: str
    run_id: int | None = None  # None: to be created
    phase: Phase | None = None  # as it is before the backfill


@dataclass(frozen=True)
class BackfillRequest:
    start: date
    end: date
    regions: tuple[str, ...]
    reprocess: Reprocess = Reprocess.NONE
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise InputError(
                f"--from {self.start.isoformat()} is after --to {self.end.isoformat()}"
            )
        if not self.regions:
            raise InputError("name at least one --region")
        if self.reprocess is not Reprocess.NONE and not (self.reason or "").strip():
            raise InputError(
                f"--reprocess {self.reprocess} redoes runs: --reason must say why "
                "(it is written to each run's audit trail)"
            )


@dataclass(frozen=True)
class BackfillPlan:
    request: BackfillRequest
    runs: tuple[PlannedRun, ...]  # one per session, by date then region

    def with_action(self, action: Action) -> list[PlannedRun]:
        return [run for run in self.runs if run.action is action]

    @property
    def counts(self) -> dict[Action, int]:
        return {action: len(self.with_action(action)) for action in Action}


def plan_backfill(
    sessions: Mapping[str, Sequence[date]],
    existing: Iterable[ExistingRun],
    reprocess: Reprocess,
) -> list[PlannedRun]:
    """What a backfill does to each session (region -> session dates) given the runs that
    exist: the rule, with no database. Runs on days that are not sessions are not its
    business (a run forced onto a holiday stays as it is)."""
    runs = {(run.as_of_date, run.region): run for run in existing}
    planned = []
    for region, days in sessions.items():
        for day in days:
            run = runs.get((day, region))
            if run is None:
                planned.append(PlannedRun(day, region, Action.CREATE, "missing"))
                continue
            action, why = _decide(run, reprocess)
            planned.append(PlannedRun(day, region, action, why, run.run_id, run.phase))
    planned.sort(key=lambda p: (p.as_of_date, p.region))
    return planned


def _decide(run: ExistingRun, reprocess: Reprocess) -> tuple[Action, str]:
    redo = {Phase.FAILED} if reprocess is Reprocess.FAILED else set()
    if reprocess is Reprocess.ALL:
        redo = {Phase.FAILED, Phase.COMPLETED}
    if run.phase in redo:
        if run.reprocessed:
            return Action.LEAVE, f"{run.phase}, reprocessed for this reason already"
        return Action.RESET, f"{run.phase}: redo from its first phase"
    if run.phase is Phase.FAILED:
        return Action.LEAVE, "FAILED (--reprocess failed redoes it)"
    if run.phase is Phase.COMPLETED:
        return Action.LEAVE, "COMPLETED (--reprocess all redoes it)"
    if run.phase is Phase.WAITING_FOR_DATA:
        return Action.LEAVE, "waiting for its data"
    return Action.LEAVE, f"in progress ({run.phase})"


def backfill(
    db: Engine,
    calendar: TradingCalendar,
    request: BackfillRequest,
    *,
    actor: str,
    today: date,
    dry_run: bool = False,
) -> BackfillPlan:
    """Plan the backfill and, unless ``dry_run``, apply it in one transaction (all or
    nothing); returns the plan as applied. ``today`` is the day the calendar's range is
    judged from: a date it cannot vouch for (a year typo) is bad input, as for ``runs
    ensure``, and so is a region that maps to no exchange."""
    sessions = _sessions(calendar, request, today)
    with db.begin() as conn:
        if not dry_run:
            # Lock the runs a reset may touch (terminal ones) before deciding, so that
            # what is decided is what is done: a retry or another backfill meanwhile
            # waits for this one, and then sees its work.
            conn.execute(query("set_lock_timeout"), {"ms": RESET_LOCK_TIMEOUT_MS})
            conn.execute(query("lock_backfill_terminal_runs"), _range_params(request))
        existing = [
            ExistingRun(row.run_id, row.as_of_date, row.region, Phase(row.phase), row.reprocessed)
            for row in conn.execute(
                query("backfill_runs"), {**_range_params(request), "reason": _reason(request)}
            )
        ]
        plan = BackfillPlan(request, tuple(plan_backfill(sessions, existing, request.reprocess)))
        if dry_run:
            return plan
        missing = plan.with_action(Action.CREATE)
        if missing:
            conn.execute(
                query("ensure_runs"),
                {
                    "dates": [p.as_of_date for p in missing],
                    "regions": [p.region for p in missing],
                    "actor": actor,
                },
            )
        resets = {p.run_id: p.phase for p in plan.with_action(Action.RESET) if p.run_id}
        why = _reason(request) or ""
        overrides.restart(conn, resets, actor=actor, reason=why, override=OVERRIDE)
    return plan


@dataclass(frozen=True)
class RangeProgress:
    """Where the backfill's runs are now."""

    by_phase: Mapping[Phase, int]
    held: int  # active runs a hold covers

    @property
    def total(self) -> int:
        return sum(self.by_phase.values())

    @property
    def completed(self) -> int:
        return self.by_phase.get(Phase.COMPLETED, 0)

    @property
    def failed(self) -> int:
        return self.by_phase.get(Phase.FAILED, 0)

    @property
    def waiting(self) -> int:
        """Runs still waiting for their data (they start when it is complete)."""
        return self.by_phase.get(Phase.WAITING_FOR_DATA, 0)

    @property
    def settled(self) -> int:
        """Runs that will not move by themselves any more: COMPLETED or FAILED."""
        return self.completed + self.failed


def range_progress(db: Database, plan: BackfillPlan) -> RangeProgress:
    """The phases of the plan's runs (its sessions: created, reset or left) right now."""
    params = {
        "dates": [p.as_of_date for p in plan.runs],
        "regions": [p.region for p in plan.runs],
    }
    with transaction(db) as conn:
        by_phase = dict.fromkeys(Phase, 0)
        held = 0
        for row in conn.execute(query("backfill_progress"), params):
            by_phase[Phase(row.phase)] = row.runs
            held += row.held
    return RangeProgress(by_phase, held)


def _sessions(
    calendar: TradingCalendar, request: BackfillRequest, today: date
) -> dict[str, list[date]]:
    sessions = {}
    for region in request.regions:
        exchange = calendar.exchange(region)  # UnknownRegion: bad input
        first, last = calendar.bounds(region, today)
        if request.start < first or request.end > last:
            raise InputError(
                f"{request.start.isoformat()}..{request.end.isoformat()} reaches outside the "
                f"{exchange} calendar ({first.isoformat()}..{last.isoformat()}), so nothing "
                f"says when {region} trades then"
            )
        sessions[region] = [s.date for s in calendar.sessions(region, request.start, request.end)]
    return sessions


def _range_params(request: BackfillRequest) -> dict[str, object]:
    return {"start": request.start, "end": request.end, "regions": list(request.regions)}


def _reason(request: BackfillRequest) -> str | None:
    return request.reason.strip() if request.reason and request.reason.strip() else None
