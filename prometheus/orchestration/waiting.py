"""Wait until a run reaches a phase: what a DAG orchestrator's sensor or asset does.

Orchestrator-neutral (no Airflow, no Dagster): the Airflow trigger, the Dagster asset and a
Prefect task all wait through here, and none of them holds a rule: the row decides.

The order is what makes a wait lose nothing: LISTEN first, then read the row, then wait on
notifications. A phase change committed after the LISTEN took effect wakes the wait; one
committed before it is in the row that the read sees. NOTIFY is not durable (a dropped
link, a writer with notifications off), so the row is read again every ``poll_interval``
seconds as the backstop.

The engine always announces COMPLETED and FAILED, so a wait for COMPLETED wakes within
milliseconds of the commit. A reactor stepping a run through its intermediate phases does
not announce them: a wait for one of those may take up to a poll interval.

The sync and async waits share every decision (``PhaseWait``); each only does its I/O.
The connection must be autocommit (a LISTEN in an open transaction takes effect only at
its commit) and is left listening: give each wait a connection of its own, or reuse one
for waits in a row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from prometheus.db.driver import driver_sql
from prometheus.db.queries import query
from prometheus.errors import InputError, PrometheusError
from prometheus.orchestration.notifications import (
    Channel,
    MalformedPayload,
    RunChanged,
    parse_notification,
)
from prometheus.pipeline.phases import Phase, has_reached
from prometheus.pipeline.runs import Run

POLL_INTERVAL_SECONDS_DEFAULT = 30.0
LISTEN = sql.SQL("LISTEN {}").format(sql.Identifier(Channel.ENGINE_RUNS))


class RunFailed(PrometheusError):
    """The run is FAILED: it will not reach the phase waited for by itself."""

    def __init__(self, run: Run) -> None:
        why = run.last_error or "no error recorded (cancelled by an operator?)"
        super().__init__(
            f"run {run.run_id} ({run.as_of_date.isoformat()} {run.region}) is FAILED"
            f" after {run.attempts} attempt(s): {why}"
        )
        self.run = run


class WaitTimedOut(PrometheusError):
    """The run did not reach the phase within the time given."""

    def __init__(self, wait: PhaseWait) -> None:
        where = f"it is {wait.run.phase}" if wait.run else "it does not exist yet"
        super().__init__(
            f"run {wait.as_of_date.isoformat()} {wait.region} did not reach {wait.phase}"
            f" within {round(wait.timeout, 1):g}s ({where})"
        )
        self.run = wait.run


@dataclass
class PhaseWait:
    """One wait's target, clock and last sight of the run, and every decision it takes."""

    as_of_date: date
    region: str
    phase: Phase
    timeout: float
    poll_interval: float = POLL_INTERVAL_SECONDS_DEFAULT
    run: Run | None = None
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.phase is Phase.FAILED:
            raise InputError("wait for a phase on the way to COMPLETED, not FAILED")
        if not self.poll_interval > 0:
            raise InputError(f"the poll interval must be > 0 seconds, got {self.poll_interval}")
        if not self.timeout >= 0:
            raise InputError(f"the timeout must be >= 0 seconds, got {self.timeout}")

    @property
    def params(self) -> dict[str, Any]:
        return {"as_of_date": self.as_of_date, "region": self.region}

    def judge(self, run: Run | None) -> Run | None:
        """The run if it has reached the phase; None to go on waiting; RunFailed."""
        self.run = run
        if self.run is None:
            return None  # not created yet: ingestion or the calendar may create it
        if has_reached(self.run.phase, self.phase):
            return self.run
        if self.run.phase is Phase.FAILED:
            raise RunFailed(self.run)
        return None

    def next_wait(self) -> float:
        """Seconds to wait for a notification before reading again; WaitTimedOut at the end."""
        remaining = self.started + self.timeout - time.monotonic()
        if remaining <= 0:
            raise WaitTimedOut(self)
        return min(self.poll_interval, remaining)

    def wakes(self, payload: str) -> bool:
        """Whether a notification may be about this run (then the row is read again)."""
        try:
            event = parse_notification(Channel.ENGINE_RUNS, payload)
        except MalformedPayload:
            return False  # not ours to trust; the poll is the backstop
        assert isinstance(event, RunChanged)
        if self.run is not None:
            return event.run_id == self.run.run_id
        if event.as_of_date is None or event.region is None:
            return True  # a sender that leaves the key out: it may be ours
        return (event.as_of_date, event.region) == (self.as_of_date, self.region)


def wait_for_phase(
    conn: psycopg.Connection[Any],
    as_of_date: date,
    region: str,
    phase: Phase = Phase.COMPLETED,
    *,
    timeout: float,
    poll_interval: float = POLL_INTERVAL_SECONDS_DEFAULT,
) -> Run:
    """Block until the run of (as_of_date, region) reaches ``phase`` and return it.

    Raises RunFailed if it is FAILED, WaitTimedOut after ``timeout`` seconds.
    """
    wait = PhaseWait(as_of_date, region, phase, timeout, poll_interval)
    _require_autocommit(conn.autocommit)
    conn.execute(LISTEN)
    while True:
        with conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(driver_sql(query("find_run")), wait.params).fetchone()
        if (run := wait.judge(_run(row))) is not None:
            return run
        for notify in conn.notifies(timeout=wait.next_wait()):
            if wait.wakes(notify.payload):
                break


async def await_phase(
    conn: psycopg.AsyncConnection[Any],
    as_of_date: date,
    region: str,
    phase: Phase = Phase.COMPLETED,
    *,
    timeout: float,
    poll_interval: float = POLL_INTERVAL_SECONDS_DEFAULT,
) -> Run:
    """``wait_for_phase`` for asyncio (an Airflow trigger): the same decisions, awaited."""
    wait = PhaseWait(as_of_date, region, phase, timeout, poll_interval)
    _require_autocommit(conn.autocommit)
    await conn.execute(LISTEN)
    while True:
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(driver_sql(query("find_run")), wait.params)
            row = await cursor.fetchone()
        if (run := wait.judge(_run(row))) is not None:
            return run
        async for notify in conn.notifies(timeout=wait.next_wait()):
            if wait.wakes(notify.payload):
                break


def _run(row: Mapping[str, Any] | None) -> Run | None:
    return Run.from_mapping(row) if row is not None else None


def _require_autocommit(autocommit: bool) -> None:
    if not autocommit:
        raise InputError("waiting needs an autocommit connection (LISTEN would wait for a commit)")
