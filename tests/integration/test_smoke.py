from datetime import date

from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Outcome, advance_run, ensure_run
from tests.support.market_data import seed_region


def test_a_ready_run_completes_in_three_steps(engine: Engine, settings: Settings) -> None:
    seed_region(engine, "US", date(2026, 11, 24))
    run = ensure_run(engine, date(2026, 11, 24), "US", data_ready=True, actor="test")
    phases = []
    for _ in range(3):
        step = advance_run(engine, run, settings=settings, actor="test")
        assert step.outcome is Outcome.ADVANCED
        assert step.run is not None
        phases.append(step.run.phase)
    assert phases == [Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE, Phase.COMPLETED]
