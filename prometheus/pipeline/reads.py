"""Reading runs and their audit trail: what the state machine's readers need, and nothing
of the machinery that steps a run.

``prometheus runs list`` and ``runs show`` import this module alone, so they start
without the stepping code and its logging; ``prometheus.pipeline.state`` re-exports
these functions as part of the state-machine API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import Connection, Engine

from prometheus.db.queries import query
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.runs import Event, Run

Database = Engine | Connection


@contextmanager
def transaction(db: Database) -> Iterator[Connection]:
    """Use the caller's connection (and transaction) if given one, else open our own."""
    if isinstance(db, Connection):
        yield db
    else:
        with db.begin() as conn:
            yield conn


def find_run(db: Database, as_of_date: date, region: str) -> Run | None:
    with transaction(db) as conn:
        params = {"as_of_date": as_of_date, "region": region}
        row = conn.execute(query("find_run"), params).one_or_none()
        return Run.from_row(row) if row else None


def get_run(db: Database, run_id: int) -> Run | None:
    with transaction(db) as conn:
        row = conn.execute(query("get_run"), {"run_id": run_id}).one_or_none()
        return Run.from_row(row) if row else None


def list_runs(db: Database, *, phase: Phase | None = None, region: str | None = None) -> list[Run]:
    with transaction(db) as conn:
        rows = conn.execute(query("list_runs"), {"phase": phase, "region": region})
        return [Run.from_row(r) for r in rows]


def list_active_runs(db: Database) -> list[Run]:
    """Runs not COMPLETED or FAILED, oldest date first."""
    with transaction(db) as conn:
        return [Run.from_row(r) for r in conn.execute(query("list_active_runs"))]


def run_events(db: Database, run_id: int) -> list[Event]:
    with transaction(db) as conn:
        rows = conn.execute(query("run_events"), {"run_id": run_id})
        return [Event(**r._mapping) for r in rows]
