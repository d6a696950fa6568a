"""``completed_since``: the runs a polling orchestrator reports, on a real database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from prometheus.orchestration.completions import completed_since
from prometheus.pipeline.phases import NEXT, Phase
from prometheus.pipeline.state import get_or_create_run, update_phase

DAY = date(2026, 11, 24)


def complete(engine: Engine, region: str) -> int:
    run = get_or_create_run(engine, DAY, region, actor="test")
    while run.phase is not Phase.COMPLETED:
        run = update_phase(engine, run, NEXT[run.phase], actor="test")
    return run.run_id


def test_completed_since_lists_the_runs_completed_in_the_window_oldest_first(
    engine: Engine,
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    first, second = complete(engine, "EU"), complete(engine, "US")
    get_or_create_run(engine, DAY, "JP", actor="test")  # active: not listed
    assert [r.run_id for r in completed_since(engine, before)] == [first, second]
    assert completed_since(engine, datetime.now(UTC) + timedelta(minutes=1)) == []
