"""SIGTERM and SIGINT: stop taking work, let the running phase finish, exit 0."""

from __future__ import annotations

from datetime import date
from signal import Signals

import pytest
from sqlalchemy import Engine

from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, get_run
from tests.support.process_tasks import (
    BLOCKING_REGION,
    create_marker_table,
    held_lock,
    lock_waiters,
    markers,
)
from tests.support.reactor_process import ReactorProcesses
from tests.support.waiting import wait_until


@pytest.mark.slow
@pytest.mark.parametrize("sig", [Signals.SIGTERM, Signals.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_lets_the_running_phase_commit_and_starts_no_other(
    reactors: ReactorProcesses, engine: Engine, sig: Signals
) -> None:
    create_marker_table(engine)
    with held_lock(engine):
        reactor = reactors.start()
        run = ensure_run(engine, date(2026, 3, 2), BLOCKING_REGION, data_ready=True, actor="test")
        wait_until(
            lambda: lock_waiters(engine) == [reactor.work_application_name],
            what="the reactor mid-phase, waiting on the test's lock",
        )

        reactor.send(sig)
        # Its listener hanging up shows the stop is under way; the phase is still running.
        wait_until(
            lambda: reactor.listener_application_name not in reactors.application_names(),
            what="the stopping reactor to close its listener",
        )
        assert reactor.alive(), "exited while its phase was still running"
        assert lock_waiters(engine) == [reactor.work_application_name]
        # Work that turns up now is not taken.
        late = ensure_run(engine, date(2026, 3, 3), "US", data_ready=True, actor="test")
    # The lock is released: the phase can finish, and then the reactor exits.

    assert reactor.wait_exit(timeout=30) == 0
    stopped = reactor.event("reactor.stopped")
    assert stopped is not None and stopped["drained"] is True

    after, untouched = get_run(engine, run.run_id), get_run(engine, late.run_id)
    assert after is not None and untouched is not None
    assert after.phase is Phase.SIGNALS_DONE, "the running phase must commit, and no other start"
    assert markers(engine, run.run_id) == [("DATA_READY", reactor.work_application_name)]
    assert untouched.phase is Phase.DATA_READY, "a stopping reactor took new work"
    assert reactors.stopped_at(reactor) is not None
