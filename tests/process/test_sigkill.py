"""SIGKILL in the middle of a phase loses nothing and doubles nothing: the other reactor
redoes the phase once, and the killed attempt's writes are gone."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine

from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, run_events
from tests.support.process_tasks import (
    BLOCKING_REGION,
    create_marker_table,
    held_lock,
    lock_waiters,
    markers,
)
from tests.support.reactor_process import ReactorProcess, ReactorProcesses, wait_for_phase
from tests.support.waiting import wait_until


def sweeps_finding_work(reactor: ReactorProcess) -> list[dict[str, Any]]:
    return [e for e in reactor.events() if e.get("event") == "sweep.completed" and e["due"]]


@pytest.mark.slow
def test_sigkill_mid_phase_the_other_reactor_redoes_the_phase_once(
    reactors: ReactorProcesses, engine: Engine
) -> None:
    create_marker_table(engine)
    with held_lock(engine):
        first, second = reactors.start_many(2, "--sweep-interval", "1")
        run = ensure_run(engine, date(2026, 3, 4), BLOCKING_REGION, data_ready=True, actor="test")
        waiting = wait_until(
            lambda: lock_waiters(engine), what="a reactor mid-phase, waiting on the test's lock"
        )
        assert len(waiting) == 1, f"two attempts at one phase at once: {waiting}"
        victim = reactors.by_application_name(waiting[0])
        survivor = second if victim is first else first
        # The survivor was notified too, and its next sweep finds the run due: it still
        # must not start the phase while the victim holds the run.
        swept = len(sweeps_finding_work(survivor))
        wait_until(
            lambda: len(sweeps_finding_work(survivor)) > swept,
            what="a sweep of the survivor that found the run",
        )
        assert lock_waiters(engine) == [victim.work_application_name]

        victim.kill()
        # The server aborts the dead client's transaction, which frees the run; the
        # survivor's sweep finds it and starts the phase over, up to the same lock.
        wait_until(
            lambda: lock_waiters(engine) == [survivor.work_application_name],
            what="the survivor to take the phase over",
        )
    # The lock is released: the survivor's attempt can finish, and the run with it.

    wait_for_phase(engine, run.run_id, Phase.COMPLETED)
    events = run_events(engine, run.run_id)
    assert [e.kind for e in events] == ["transition"] * 5  # created, ready, and three phases
    signals_done = [
        e for e in events if (e.from_phase, e.to_phase) == ("DATA_READY", "SIGNALS_DONE")
    ]
    assert [e.actor for e in signals_done] == [survivor.id]
    # One committed marker, the survivor's: the killed attempt's was rolled back with it.
    assert markers(engine, run.run_id) == [("DATA_READY", survivor.work_application_name)]
    assert survivor.alive()
