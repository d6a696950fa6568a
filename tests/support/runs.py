"""Making runs ready and waiting for them, for tests that drive a reactor."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from prometheus.pipeline.phases import TERMINAL, Phase
from prometheus.pipeline.state import get_or_create_run, get_run, update_phase
from tests.support.waiting import wait_until

DEADLINE = 30.0


def make_ready(engine: Engine, day: date, region: str = "US", *, notify: bool = True) -> int:
    """A run for (day, region) made DATA_READY; ``notify=False`` loses its notification."""
    with engine.begin() as conn:
        run = get_or_create_run(conn, day, region, actor="test")
        return update_phase(conn, run, Phase.DATA_READY, actor="test", notify=notify).run_id


def wait_phase(
    engine: Engine, run_id: int, phase: Phase = Phase.COMPLETED, *, timeout: float = DEADLINE
) -> None:
    """Until the run is in ``phase``; fails at once if it ends in another terminal phase."""

    def reached() -> Phase | None:
        run = get_run(engine, run_id)
        if run and run.phase in TERMINAL and run.phase is not phase:
            raise AssertionError(f"run {run_id} ended {run.phase}, not {phase}: {run}")
        return run.phase if run and run.phase is phase else None

    try:
        wait_until(reached, timeout=timeout, interval=0.02, what=f"run {run_id} {phase}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; run is {get_run(engine, run_id)}") from None
