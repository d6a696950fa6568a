"""Runs put in a phase for a test's setup, the way an operator would: the audited
override (``runs set-phase --force``), since nothing else may skip the state machine."""

from __future__ import annotations

from sqlalchemy import Engine

from prometheus.pipeline import overrides
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Run


def place(engine: Engine, run: Run, phase: Phase) -> Run:
    """``run`` moved to ``phase`` (as it then is in the database); as it was if there."""
    if run.phase is phase:
        return run
    return overrides.set_phase(
        engine, run.as_of_date, run.region, phase, actor="setup", reason="test setup", force=True
    )
