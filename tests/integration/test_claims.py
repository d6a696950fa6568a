"""How a reactor picks its next run: never waiting on a run someone holds, in the order runs
became due (so after a gap, a run interrupted mid-pipeline goes before newer ones), and
never missing a run made ready while its listener was not yet listening."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from prometheus.config import Settings
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import get_or_create_run, get_run, update_phase
from tests.support import reactor_tasks
from tests.support.inprocess import ReactorThreads
from tests.support.proxy import Proxy
from tests.support.runs import make_ready, wait_phase
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)
HOUR = timedelta(hours=1)
AT_ONCE_S = 10.0  # "at once", generously: a claim that waits on a lock never gets there


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    """Only the start-up sweep and what the test does can move a run."""
    return replace(settings, phase_tasks=reactor_tasks.MODULE, sweep_interval=HOUR)


@pytest.fixture
def admin(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True, application_name="tests-admin") as conn:
        yield conn


def test_a_run_held_by_another_transaction_is_skipped_and_the_others_advance_at_once(
    engine: Engine, quiet: Settings, reactors: ReactorThreads, admin: psycopg.Connection[Any]
) -> None:
    held, *others = [make_ready(engine, DAY + timedelta(days=i), notify=False) for i in range(3)]
    with admin.transaction():
        # The oldest due run, locked as a claim locks it: every worker's first choice.
        admin.execute("SELECT 1 FROM engine_runs WHERE run_id = %s FOR NO KEY UPDATE", (held,))
        reactors.start(replace(quiet, concurrency=2))
        for run_id in others:
            wait_phase(engine, run_id, timeout=AT_ONCE_S)
        run = get_run(engine, held)
        assert run is not None and run.phase is Phase.DATA_READY
    late = make_ready(engine, DAY + timedelta(days=10))  # notified: wakes a worker
    wait_phase(engine, held)
    wait_phase(engine, late)


@pytest.mark.parametrize("batch", [1, 16], ids=["one-run-per-transaction", "batches"])
def test_after_a_gap_runs_are_served_in_the_order_they_became_due(
    engine: Engine, quiet: Settings, reactors: ReactorThreads, batch: int
) -> None:
    """Runs interrupted mid-pipeline (here at SIGNALS_DONE and UNIVERSES_DONE) became due
    before the runs made ready after them: one worker takes them first, though their
    phases come later in the pipeline. One run per transaction, they complete in exactly
    that order. In batches (claimed in that order, then stepped together, phase after
    phase) a batch's runs with fewer phases left complete first, and a batch cut short
    by its time limit leaves runs to later ones: the interrupted runs still all complete
    before any newer one."""
    interrupted = []
    with engine.begin() as conn:
        for offset, stop in enumerate([Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE] * 5):
            run = get_or_create_run(conn, DAY - timedelta(days=offset + 1), "US", actor="test")
            for phase in (Phase.DATA_READY, Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE):
                run = update_phase(conn, run, phase, actor="test", notify=False)
                if phase is stop:
                    break
            interrupted.append(run.run_id)
    newer = [make_ready(engine, DAY + timedelta(days=i), notify=False) for i in range(40)]

    running = reactors.start(replace(quiet, concurrency=1, batch_max_runs=batch))
    for run_id in interrupted + newer:
        wait_phase(engine, run_id)
    with engine.connect() as conn:
        completed = conn.execute(
            text(
                "SELECT run_id FROM engine_run_events"
                " WHERE to_phase = 'COMPLETED' AND actor = :actor ORDER BY event_id"
            ),
            {"actor": running.reactor_id},
        ).scalars()
        order = list(completed)
    if batch == 1:
        assert order == interrupted + newer
    else:
        assert sorted(order[: len(interrupted)]) == sorted(interrupted)
        assert sorted(order[len(interrupted) :]) == sorted(newer)


def test_a_run_made_ready_before_the_listener_listens_is_found_by_the_sweep_after_listen(
    engine: Engine, quiet: Settings, reactors: ReactorThreads, proxy: Proxy, db_url: str
) -> None:
    """The window between the start-up sweep and LISTEN, held open: the listener's link
    (PROMETHEUS_LISTEN_URL, through a proxy) is down while the reactor starts and sweeps;
    a run made ready then is notified to nobody, and only the sweep that follows LISTEN
    can find it. The reactor has no poll service: while its listener is down it would
    poll (each failed reconnect wakes it), and the poll would find the run instead."""
    proxy.stop()
    running = reactors.start(replace(quiet, listen_url=proxy.url(db_url)), without={"poll"})
    wait_until(
        lambda: (
            running.sample("prometheus_sweeps_total") >= 1
            and running.sample("prometheus_listener_reconnects_total") >= 1
        ),
        what="the start-up sweep done and the listener failing to connect",
    )
    assert running.sample("prometheus_swept_runs_total") == 0  # nothing due yet
    run_id = make_ready(engine, DAY)
    proxy.start()
    wait_phase(engine, run_id)
    # The sweep after LISTEN found it, and nothing else looked.
    assert running.sample("prometheus_swept_runs_total") >= 1
    assert running.sample("prometheus_polls_total") == 0
