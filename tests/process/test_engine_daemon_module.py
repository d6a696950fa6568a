"""``python -m prometheus.orchestration.engine_daemon``: the same reactor, for unit files
that call the module."""

from __future__ import annotations

from datetime import date
from signal import Signals

import pytest
from sqlalchemy import Engine

from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, run_events
from tests.support.reactor_process import ReactorProcesses, wait_for_phase


@pytest.mark.slow
def test_the_module_runs_runs_to_completed_and_stops_on_sigterm(
    reactors: ReactorProcesses, engine: Engine
) -> None:
    # One run is ready before the reactor starts (its start-up sweep finds it), one after
    # (a notification or the next sweep finds it).
    early = ensure_run(engine, date(2026, 3, 5), "US", data_ready=True, actor="test")
    reactor = reactors.start("--sweep-interval", "1", module=True)
    late = ensure_run(engine, date(2026, 3, 6), "US", data_ready=True, actor="test")

    for run in (early, late):
        wait_for_phase(engine, run.run_id, Phase.COMPLETED)
        moves = [e for e in run_events(engine, run.run_id) if e.from_phase != "WAITING_FOR_DATA"]
        assert [(e.to_phase, e.actor) for e in moves if e.from_phase] == [
            ("SIGNALS_DONE", reactor.id),
            ("UNIVERSES_DONE", reactor.id),
            ("COMPLETED", reactor.id),
        ]

    reactor.send(Signals.SIGTERM)
    assert reactor.wait_exit(timeout=30) == 0
    assert reactors.stopped_at(reactor) is not None
