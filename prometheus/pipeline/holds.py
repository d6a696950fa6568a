"""Holds: an operator stops runs from advancing, by region, phase and dates, and lets
them go again ("hold the books" while bad upstream data is fixed).

A hold is a row of ``engine_run_holds``, and its own audit record: who placed it, why
and when, and who released it, why and when. The database enforces it: every claim
(reactor, ``runs advance``, ``advance-all``, the seed's scripts, the orchestrator helpers)
leaves a covered run alone, and a release notifies the reactors, which then take what is
due at once. A phase already running when a hold is placed finishes; the next one does
not start. Here: what an operator may ask for, and the reads that show holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine

from prometheus.db.queries import query
from prometheus.errors import InputError, RunNotFound
from prometheus.pipeline.phases import TERMINAL, WORKABLE, Phase
from prometheus.pipeline.reads import Database, find_run, transaction
from prometheus.pipeline.runs import Run


@dataclass(frozen=True)
class HoldScope:
    """Which runs a hold covers: a region's runs, in one phase (None: any), dated from
    ``from_date`` to ``to_date`` (None: no bound). Only runs not yet COMPLETED or FAILED."""

    region: str
    phase: Phase | None = None
    from_date: date | None = None
    to_date: date | None = None

    def __post_init__(self) -> None:
        if self.phase is not None and self.phase not in WORKABLE:
            names = ", ".join(sorted(WORKABLE))
            raise InputError(
                f"a hold's phase is one whose task would run next ({names}), not {self.phase}"
            )
        if self.from_date and self.to_date and self.from_date > self.to_date:
            raise InputError(
                f"--from {self.from_date.isoformat()} is after --to {self.to_date.isoformat()}"
            )

    def describe(self) -> str:
        """``US``, ``US SIGNALS_DONE``, ``US 2026-01-05..2026-01-09``, ``US from 2026-01-05``."""
        parts = [self.region]
        if self.phase is not None:
            parts.append(str(self.phase))
        if self.from_date and self.to_date:
            parts.append(f"{self.from_date.isoformat()}..{self.to_date.isoformat()}")
        elif self.from_date:
            parts.append(f"from {self.from_date.isoformat()}")
        elif self.to_date:
            parts.append(f"to {self.to_date.isoformat()}")
        return " ".join(parts)


@dataclass(frozen=True)
class Hold:
    hold_id: int
    scope: HoldScope
    reason: str
    held_by: str
    held_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_reason: str | None
    runs_held: int  # active runs it covers now (0 once released)

    @property
    def active(self) -> bool:
        return self.released_at is None

    def describe(self) -> str:
        return f"hold {self.hold_id} on {self.scope.describe()}"


def place_hold(db: Engine, scope: HoldScope, *, actor: str, reason: str) -> tuple[Hold, bool]:
    """Hold the runs of ``scope``; returns the hold and whether it is new. Holding exactly
    what an active hold holds already is a no-op that returns that hold (safe to repeat)."""
    why = _reason(reason)
    with db.begin() as conn:
        params = {**_scope_params(scope), "reason": why, "actor": actor}
        new_id: int | None = conn.execute(query("place_hold"), params).scalar()
        # None: an active hold of this scope exists (a concurrent one has committed, or
        # the insert waited for it: ON CONFLICT sees it either way).
        hold_id: int = (
            new_id or conn.execute(query("active_hold_of_scope"), _scope_params(scope)).scalar_one()
        )
        (hold,) = _holds(conn, [hold_id])
        created = new_id is not None
    return hold, created


def release_holds(
    db: Engine,
    *,
    actor: str,
    reason: str,
    hold_ids: Sequence[int] = (),
    scope: HoldScope | None = None,
) -> list[Hold]:
    """Release the active holds named by id, or the one active hold of exactly ``scope``
    (what ``runs hold`` with the same options placed). All or nothing: an id that is not
    an active hold, or a scope no active hold has, is an InputError and nothing changes."""
    why = _reason(reason, doing="release")
    if bool(hold_ids) == (scope is not None):
        raise InputError("name the holds to release: hold ids, or --region (with its options)")
    with db.begin() as conn:
        if scope is not None:
            found = conn.execute(query("active_hold_of_scope"), _scope_params(scope)).scalar()
            if found is None:
                raise InputError(
                    f"no active hold on exactly {scope.describe()}; {_active_hint(conn, scope)}"
                )
            wanted = [found]
        else:
            wanted = sorted(set(hold_ids))
        released = list(
            conn.execute(
                query("release_holds"), {"hold_ids": wanted, "actor": actor, "reason": why}
            ).scalars()
        )
        missing = sorted(set(wanted) - set(released))
        if missing:
            conn.rollback()
            names = ", ".join(str(i) for i in missing)
            raise InputError(f"not an active hold: {names}; nothing released")
        return _holds(conn, released)


def active_holds(db: Database, *, region: str | None = None) -> list[Hold]:
    """Active holds, oldest first, with how many runs each covers now."""
    with transaction(db) as conn:
        ids = conn.execute(query("active_hold_ids"), {"region": region}).scalars()
        return _holds(conn, list(ids))


def holds_of_run(db: Database, run_id: int) -> list[Hold]:
    """The active holds that cover the run (what keeps it from advancing)."""
    with transaction(db) as conn:
        ids = conn.execute(query("holds_of_run"), {"run_id": run_id}).scalars()
        return _holds(conn, list(ids))


def can_hold(run: Run) -> bool:
    """Whether ``hold_run`` would hold the run: an active run that nothing holds yet."""
    return run.phase not in TERMINAL and run.hold_id is None


def can_release(run: Run) -> bool:
    """Whether ``release_run`` has something to release: a hold covers the run."""
    return run.hold_id is not None


def hold_run(db: Engine, as_of_date: date, region: str, *, actor: str, reason: str) -> Run:
    """Hold this one run: a hold on its region and date, in every phase (the console's
    Hold). Returns the run, now held."""
    place_hold(db, HoldScope(region, None, as_of_date, as_of_date), actor=actor, reason=reason)
    return _run(db, as_of_date, region)


def release_run(db: Engine, as_of_date: date, region: str, *, actor: str, reason: str) -> Run:
    """Release every hold that covers the run, with the whole of its scope (the console's
    Release; it shows what each hold covers first). InputError if nothing holds it."""
    run = _run(db, as_of_date, region)
    covering = [h.hold_id for h in holds_of_run(db, run.run_id)]
    if not covering:
        raise InputError(f"run {run.run_id} is not held: nothing to release")
    release_holds(db, actor=actor, reason=reason, hold_ids=covering)
    return _run(db, as_of_date, region)


def _run(db: Engine, as_of_date: date, region: str) -> Run:
    run = find_run(db, as_of_date, region)
    if run is None:
        raise RunNotFound(f"no run for {as_of_date.isoformat()} {region}")
    return run


def _holds(conn: Connection, hold_ids: list[int]) -> list[Hold]:
    rows = conn.execute(query("holds_by_id"), {"hold_ids": hold_ids})
    return [
        Hold(
            hold_id=row.hold_id,
            scope=HoldScope(
                row.region,
                Phase(row.phase) if row.phase else None,
                row.from_date,
                row.to_date,
            ),
            reason=row.reason,
            held_by=row.held_by,
            held_at=row.held_at,
            released_by=row.released_by,
            released_at=row.released_at,
            release_reason=row.release_reason,
            runs_held=row.runs_held,
        )
        for row in rows
    ]


def _active_hint(conn: Connection, scope: HoldScope) -> str:
    ids = list(conn.execute(query("active_hold_ids"), {"region": scope.region}).scalars())
    if not ids:
        return f"{scope.region} has no active hold"
    listed = "; ".join(h.describe() for h in _holds(conn, ids))
    return f"active on {scope.region}: {listed} (release by id, or with the same options)"


def _scope_params(scope: HoldScope) -> dict[str, object]:
    return {
        "region": scope.region,
        "phase": scope.phase,
        "from_date": scope.from_date,
        "to_date": scope.to_date,
    }


def _reason(reason: str, *, doing: str = "hold") -> str:
    why = reason.strip()
    if not why:
        raise InputError(f"--reason must say why you {doing} (it is written to the hold's record)")
    return why
