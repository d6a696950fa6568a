"""Runs that turned COMPLETED recently, for an orchestrator that polls (Dagster's sensor).

A state, not a stream of events: the poller asks for the runs COMPLETED within a window
and reports those it has not recorded yet. So it needs no cursor of its own, and an
event id taken before its transaction committed (a later id can become visible first)
cannot make it skip a run.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from prometheus.db.queries import query
from prometheus.pipeline.runs import Run


def completed_since(engine: Engine, since: datetime) -> list[Run]:
    """Runs COMPLETED at or after ``since`` (tz-aware), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(query("completed_runs_since"), {"since": since})
        return [Run.from_row(row) for row in rows]
