"""Audited manual overrides: retry, cancel, set-phase and restart, each with who and why.

Who may force what is decided here, not in the CLI: retry only from FAILED and only
back to the phase the run failed in; cancel only an active run; set-phase anything,
but only when the operator says ``force``; restart (a backfill's redo) only a finished
run, back to its start. Each decides on the run as it is, under its
row lock (a run in the middle of a phase is busy: exit 1, nothing changed). A legal move
goes through ``update_phase``; one the transition table refuses (a retry, most
set-phases) through the database's ``prometheus_force_phase``, the only way past the
guard, which will not move without an actor and a reason. Either way the audit trigger
records both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import Connection, Engine

from prometheus.db.queries import query
from prometheus.db.sqlstate import mapped_errors
from prometheus.errors import InputError, RunNotFound
from prometheus.pipeline.phases import TERMINAL, Phase, is_legal
from prometheus.pipeline.state import Run, get_run, update_phase


def can_retry(run: Run) -> bool:
    """Whether ``retry`` would accept the run as it is (callers offer the action by it)."""
    return run.phase is Phase.FAILED


def can_cancel(run: Run) -> bool:
    """Whether ``cancel`` would accept the run as it is."""
    return run.phase not in TERMINAL


def retry(db: Engine, as_of_date: date, region: str, *, actor: str, reason: str) -> Run:
    """FAILED back to the phase it failed in, with its attempts reset."""
    with db.begin() as conn:
        run = _locked(conn, as_of_date, region)
        if not can_retry(run):
            raise InputError(f"run {run.run_id} is {run.phase}, not FAILED: nothing to retry")
        failed_in = conn.execute(query("phase_failed_in"), {"run_id": run.run_id}).scalar()
        target = Phase(failed_in) if failed_in else Phase.DATA_READY
        return _move(conn, run, target, actor=actor, override="retry", reason=reason)


def cancel(db: Engine, as_of_date: date, region: str, *, actor: str, reason: str) -> Run:
    """An active run to FAILED (a legal transition, so no force is needed)."""
    with db.begin() as conn:
        run = _locked(conn, as_of_date, region)
        if not can_cancel(run):
            raise InputError(f"run {run.run_id} is already {run.phase}: nothing to cancel")
        return _move(conn, run, Phase.FAILED, actor=actor, override="cancel", reason=reason)


def can_restart(phase: Phase | None) -> bool:
    """Whether ``restart`` would accept a run in ``phase``: one that has finished."""
    return phase in TERMINAL


def restart(
    conn: Connection,
    runs: Mapping[int, Phase | None],
    *,
    actor: str,
    reason: str,
    override: str,
) -> None:
    """Finished runs (run_id -> the phase the caller found it in, under its lock) back to
    WAITING_FOR_DATA, to be redone from their first phase: the phase tasks are idempotent,
    so a redo rewrites the same rows. A run whose data is complete is DATA_READY at once
    (the database's rewaiting trigger); each move is audited with ``override`` and the
    reason. In the caller's transaction, which holds the runs' locks."""
    if not runs:
        return
    reason = _reason(reason)
    active = sorted(run_id for run_id, phase in runs.items() if not can_restart(phase))
    if active:
        raise InputError(f"only a COMPLETED or FAILED run can be redone; active: {active}")
    params = [
        {
            "run_id": run_id,
            "to_phase": Phase.WAITING_FOR_DATA,
            "actor": actor,
            "reason": reason,
            "override": override,
        }
        for run_id in sorted(runs)
    ]
    conn.execute(query("force_phase"), params)


def set_phase(
    db: Engine, as_of_date: date, region: str, phase: Phase, *, actor: str, reason: str, force: bool
) -> Run:
    """Any run to any phase; refused unless the operator passes ``force``."""
    if not force:
        raise InputError("set-phase bypasses the state machine: pass --force to confirm")
    with db.begin() as conn:
        run = _locked(conn, as_of_date, region)
        if run.phase is phase:
            # Not a phase change, so the database would record nothing: an override that
            # leaves no audit row must not report success.
            raise InputError(f"run {run.run_id} is already {phase}: nothing to change")
        return _move(conn, run, phase, actor=actor, override="set-phase", reason=reason)


def _move(
    conn: Connection, run: Run, phase: Phase, *, actor: str, override: str, reason: str
) -> Run:
    """The audited change, forced only where the rules need it (cancel is a legal move).
    Returns the run as the database then has it: a run sent back to WAITING_FOR_DATA
    whose data is complete is already DATA_READY again."""
    reason = _reason(reason)
    if is_legal(run.phase, phase):
        detail = {"override": override, "reason": reason}
        update_phase(conn, run, phase, actor=actor, detail=detail)
    else:
        params = {
            "run_id": run.run_id,
            "to_phase": phase,
            "actor": actor,
            "reason": reason,
            "override": override,
        }
        conn.execute(query("force_phase"), params).one()
    fresh = get_run(conn, run.run_id)
    assert fresh is not None, "the run is locked by this transaction"
    return fresh


def _locked(conn: Connection, as_of_date: date, region: str) -> Run:
    params = {"as_of_date": as_of_date, "region": region}
    with mapped_errors():
        row = conn.execute(query("lock_run_for_override"), params).one_or_none()
    if row is None:
        raise RunNotFound(f"no run for {as_of_date.isoformat()} {region}")
    return Run.from_row(row)


def _reason(reason: str) -> str:
    if not reason.strip():
        raise InputError("--reason must say why (it is written to the audit trail)")
    return reason.strip()
