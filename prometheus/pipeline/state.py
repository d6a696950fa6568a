"""The state-machine API (SPEC section 4): the only helpers every trigger path calls.

Cron, the reactor, the CLI and a DAG orchestrator all *ask* for transitions through
these functions; the rules (order, retries, backoff) live here, in ``stepping`` (how one
step runs) and in the database's triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.db.queries import query
from prometheus.errors import IllegalTransition
from prometheus.pipeline.attempts import write_phase
from prometheus.pipeline.phases import Phase, is_legal
from prometheus.pipeline.reads import (
    Database,
    find_run,
    get_run,
    list_active_runs,
    list_runs,
    run_events,
    transaction,
)
from prometheus.pipeline.runs import Event, Outcome, Run, Step
from prometheus.pipeline.stepping import ONE_RUN, BatchLimits, step_runs
from prometheus.pipeline.trading_days import calendar_today, require_trading_day

__all__ = [
    "Event",
    "Outcome",
    "Run",
    "Step",
    "advance_all",
    "advance_batch",
    "advance_next",
    "advance_run",
    "count_due_runs",
    "ensure_run",
    "ensure_session_run",
    "find_run",
    "get_or_create_run",
    "get_run",
    "list_active_runs",
    "list_due_run_ids",
    "list_runs",
    "run_events",
    "seconds_until_due",
    "seconds_until_next_retry",
    "update_phase",
]


def get_or_create_run(db: Database, as_of_date: date, region: str, *, actor: str = "db") -> Run:
    """The run of (as_of_date, region), created in WAITING_FOR_DATA if missing.
    Safe to call from many connections at once: exactly one row results."""
    with transaction(db) as conn:
        params = {"as_of_date": as_of_date, "region": region, "actor": actor}
        conn.execute(query("insert_run"), params)
        # Read it back in a statement of its own: it may have existed, a concurrent creator
        # may have committed it first, or the insert's triggers may have moved it on.
        return Run.from_row(conn.execute(query("find_run"), params).one())


def ensure_run(db: Database, as_of_date: date, region: str, *, data_ready: bool, actor: str) -> Run:
    """The seed's ``--ensure [--data-ready]``: create the run, and optionally declare its
    data ready. Safe to repeat: a run already past WAITING_FOR_DATA is left as it is."""
    with transaction(db) as conn:
        run = get_or_create_run(conn, as_of_date, region, actor=actor)
        if data_ready and run.phase is Phase.WAITING_FOR_DATA:
            # Decide under the row lock: another writer (the readiness trigger, a second
            # cron job) may be making it ready right now, and that is success, not a race.
            run = Run.from_row(conn.execute(query("lock_run"), {"run_id": run.run_id}).one())
            if run.phase is Phase.WAITING_FOR_DATA:
                run = update_phase(conn, run, Phase.DATA_READY, actor=actor)
        return run


def list_due_run_ids(db: Database, *, limit: int = 100_000) -> list[int]:
    """Runs with work to do now: workable phase, not backing off (the sweep's question)."""
    with transaction(db) as conn:
        return list(conn.execute(query("list_due_runs"), {"limit": limit}).scalars())


def ensure_session_run(
    connect: Callable[[], Database],
    calendar: TradingCalendar,
    as_of_date: date,
    region: str,
    *,
    data_ready: bool,
    force: bool,
    actor: str,
    doing: str,
    on_forced: Callable[[str], None],
) -> Run:
    """``ensure_run`` for a day the rule allows (``trading_days``): a session of the
    region's exchange within its calendar, or any day with ``force``, whose warning goes
    to ``on_forced`` (a CLI's stderr, an orchestrator's log). ``doing`` names the request
    in the refusal ("ensure the run"). The day is judged before ``connect`` is called: a
    refused day costs no connection, nor an embedded server's start."""
    if warning := require_trading_day(
        calendar, as_of_date, region, force=force, today=calendar_today(), doing=doing
    ):
        on_forced(warning)
    return ensure_run(connect(), as_of_date, region, data_ready=data_ready, actor=actor)


def seconds_until_next_retry(db: Database) -> float | None:
    with transaction(db) as conn:
        seconds = conn.execute(query("next_retry_in")).scalar_one()
        return float(seconds) if seconds is not None else None


def seconds_until_due(db: Database, run_id: int) -> float | None:
    """Seconds until the run's backoff ends, as the database's clock says; None when it
    is not backing off (due now, waiting, terminal, or gone)."""
    with transaction(db) as conn:
        seconds = conn.execute(query("run_due_in"), {"run_id": run_id}).scalar()
        return float(seconds) if seconds is not None else None


def update_phase(
    db: Database,
    run: Run,
    phase: Phase,
    *,
    actor: str,
    detail: Mapping[str, Any] | None = None,
    notify: bool = True,
) -> Run:
    """Move ``run`` from the phase it was read in to ``phase``, audited as ``actor``.

    Refused (IllegalTransition) if the move is not in the transition table or if the run
    left that phase meanwhile. The database's guard trigger enforces the same table for
    any other writer; the one way past it is an audited override (``overrides``).
    """
    if not is_legal(run.phase, phase):
        raise IllegalTransition(f"illegal transition: {run.phase} -> {phase} (run {run.run_id})")
    with transaction(db) as conn:
        return write_phase(conn, run, phase, actor=actor, detail=detail or {}, notify=notify)


def advance_run(
    db: Engine,
    run: Run | int,
    *,
    settings: Settings | None = None,
    actor: str = "engine",
    notify: bool = True,
) -> Step:
    """Take the run one step (SPEC section 4's table) in one transaction.

    ``settings`` default to this process's (``PROMETHEUS_*``). ``notify=False`` is for a
    caller that will keep stepping this run itself: the intermediate phase changes then
    wake nobody, which spares a NOTIFY each (a cluster-wide lock at commit); the run's
    arrival in COMPLETED or FAILED is always announced. A run an operator's hold covers
    is not stepped (Outcome.HELD); one another process holds is BUSY.
    """
    settings = settings or Settings.from_process_env()
    run_id = run if isinstance(run, int) else run.run_id
    steps = step_runs(
        db,
        runs=[run_id],
        take_due=False,
        limits=ONE_RUN,
        settings=settings,
        actor=actor,
        notify=notify,
    )
    if steps:
        return steps[0]
    # Not claimed: say why (a read, not a claim; the answer may be stale at once).
    current = get_run(db, run_id)
    if current is not None and current.hold_id is not None:
        return Step(Outcome.HELD, current)
    return Step(Outcome.BUSY, None)


def advance_next(db: Engine, *, settings: Settings, actor: str, notify: bool = True) -> Step | None:
    """One step of the oldest due run that no other process holds; None if there is none.

    This is how workers share work: a notification only says "there may be work", and
    each worker claims what is due, so several reactors never queue or try the same run.
    """
    steps = advance_batch(
        db, runs=(), limits=ONE_RUN, settings=settings, actor=actor, notify=notify
    )
    return steps[0] if steps else None


def advance_batch(
    db: Engine,
    *,
    runs: Iterable[int],
    limits: BatchLimits,
    settings: Settings,
    actor: str,
    notify: bool = True,
    on_task: Callable[[Run], None] = lambda run: None,
    on_abandoned: Callable[[Step], None] = lambda step: None,
) -> list[Step]:
    """A reactor worker's transaction: one step of each of ``runs`` (the runs it is
    stepping, as far as they can be claimed), then of the oldest due runs nobody holds,
    while ``limits`` allow; empty when there was nothing to claim. See ``stepping``
    (``step_runs``) for ``on_task`` and ``on_abandoned``."""
    return step_runs(
        db,
        runs=runs,
        take_due=True,
        limits=limits,
        settings=settings,
        actor=actor,
        notify=notify,
        on_task=on_task,
        on_abandoned=on_abandoned,
    )


def count_due_runs(db: Database) -> int:
    with transaction(db) as conn:
        count: int = conn.execute(query("count_due_runs")).scalar_one()
        return count


def advance_all(
    db: Engine,
    *,
    settings: Settings,
    actor: str,
    progress: Callable[[Step, int], None] | None = None,
) -> list[Step]:
    """One step for every run that has work due now (the seed's ``--advance-all``).

    ``progress(step, due)`` is called after each step, ``due`` being how many runs were
    due at the start: over thousands of runs, an operator wants to see it move.
    """
    due = list_due_run_ids(db)
    steps = []
    for run_id in due:
        step = advance_run(db, run_id, settings=settings, actor=actor)
        steps.append(step)
        if progress is not None:
            progress(step, len(due))
    return steps
