"""Ask for a run's transitions from a DAG orchestrator: declare its data in, step it.

Orchestrator-neutral (no Airflow, no Dagster): the Airflow operators, the Dagster asset
and a Prefect task call these, as ``prometheus runs ensure --data-ready`` and
``runs advance`` do. Each is a composition of state-machine calls; the rules (which
day may have a run, what a step does, retries and backoff) stay in ``prometheus.pipeline``
and the database.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.errors import RunNotFound
from prometheus.logs import get_logger
from prometheus.orchestration.waiting import (
    POLL_INTERVAL_SECONDS_DEFAULT,
    PhaseWait,
    WaitTimedOut,
    wait_for_phase,
)
from prometheus.pipeline.phases import NEXT, Phase
from prometheus.pipeline.state import (
    Outcome,
    Run,
    Step,
    advance_run,
    ensure_session_run,
    find_run,
    seconds_until_due,
)

log = get_logger(__name__)

MIN_PAUSE_SECONDS = 0.05  # a backoff ending now: step again after this, never in a busy loop


def mark_data_ready(
    engine: Engine,
    as_of_date: date,
    region: str,
    *,
    settings: Settings,
    actor: str,
    force: bool = False,
) -> Run:
    """Create the run if missing and declare its data in (safe to repeat; a run already
    past WAITING_FOR_DATA is left as it is). A day the region's exchange does not trade
    is refused (NotATradingDay) unless ``force``, as ``runs ensure`` refuses it; a region
    that maps to no exchange always is (UnknownRegion)."""
    return ensure_session_run(
        lambda: engine,
        TradingCalendar(settings.region_exchanges),
        as_of_date,
        region,
        data_ready=True,
        force=force,
        actor=actor,
        doing="mark the run data-ready",
        on_forced=lambda warning: log.warning("run.ensure_forced", warning=warning),
    )


def advance(
    engine: Engine,
    as_of_date: date,
    region: str,
    *,
    settings: Settings,
    actor: str,
    until_settled: bool = False,
) -> Step:
    """One step of the run; with ``until_settled``, step after step until it waits (for
    data, a backoff, another process) or ends. Returns the last step. RunNotFound if
    there is no such run."""
    run = find_run(engine, as_of_date, region)
    if run is None:
        raise RunNotFound(f"no run for {as_of_date.isoformat()} {region}")
    step = advance_run(engine, run, settings=settings, actor=actor)
    while until_settled and step.should_continue:
        step = advance_run(engine, run, settings=settings, actor=actor)
    return step


def drive(
    engine: Engine,
    conn: psycopg.Connection[Any],
    as_of_date: date,
    region: str,
    *,
    settings: Settings,
    actor: str,
    timeout: float,
    poll_interval: float = POLL_INTERVAL_SECONDS_DEFAULT,
) -> Run:
    """Step the run here until it is COMPLETED (returned), for a site with no reactor.

    Between steps that cannot go on it waits on ``conn`` (autocommit, as for
    ``wait_for_phase``) for the run's next phase, or for its backoff to end: never a
    spin. Raises RunFailed when the run is FAILED, WaitTimedOut after ``timeout`` s.
    """
    overall = PhaseWait(as_of_date, region, Phase.COMPLETED, timeout, poll_interval)
    while True:
        step = advance(
            engine, as_of_date, region, settings=settings, actor=actor, until_settled=True
        )
        run = step.run or find_run(engine, as_of_date, region)
        if overall.judge(run) is not None:
            assert run is not None
            return run
        pause = min(overall.next_wait(), _until_due(engine, step, overall.run))
        try:
            wait_for_phase(
                conn,
                as_of_date,
                region,
                NEXT[overall.run.phase] if overall.run else Phase.DATA_READY,
                timeout=pause,
                poll_interval=poll_interval,
            )
        except WaitTimedOut:
            continue  # the backoff is over, or the poll's turn: step again


def _until_due(engine: Engine, step: Step, run: Run | None) -> float:
    """How long a run backing off has before its next attempt, as the database's clock
    says (the one its ``next_attempt_at`` was set by: a host clock ahead of it would make
    this a busy loop of steps, one behind it a late retry); otherwise no limit."""
    if step.outcome not in (Outcome.BACKING_OFF, Outcome.RETRY_SCHEDULED) or run is None:
        return float("inf")
    return max(seconds_until_due(engine, run.run_id) or 0.0, MIN_PAUSE_SECONDS)
