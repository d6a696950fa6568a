"""Batches under a backlog, with real reactor processes: a SIGKILL in the middle of a
batch loses and doubles nothing, and reactors batching side by side make every forward
transition exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import get_or_create_run, update_phase
from tests.process.test_many_reactors import FORWARD, make_ready_in_one_transaction
from tests.support.process_tasks import (
    BATCH_BLOCKS_AT,
    BATCH_REGION,
    batch_marks,
    create_marker_table,
    held_lock,
    lock_waiters,
)
from tests.support.reactor_process import ReactorProcesses, wait_for_phase
from tests.support.waiting import wait_until

DAY = date(2026, 3, 2)


@pytest.fixture
def patient(db_url: str, tmp_path: Path) -> Iterator[ReactorProcesses]:
    """Reactors whose batches are bounded by count alone: on a busy test machine a round
    trip can take milliseconds, and the time bound would end a batch after a run or two."""
    procs = ReactorProcesses(db_url, tmp_path, PROMETHEUS_BATCH_MAX_MS="60000")
    try:
        yield procs
    finally:
        procs.close()


def forward_steps(engine: Engine) -> Counter[tuple[int, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_id, from_phase, to_phase FROM engine_run_events"
                " WHERE kind = 'transition'"
                " AND from_phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE')"
            )
        ).all()
    return Counter((r.run_id, r.from_phase, r.to_phase) for r in rows)


def largest_transaction(engine: Engine) -> int:
    """The most forward transitions one transaction committed (its rows share an xmin)."""
    with engine.connect() as conn:
        largest: int = conn.execute(
            text(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM engine_run_events"
                " WHERE kind = 'transition'"
                " AND from_phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE')"
                " GROUP BY xmin::text) t"
            )
        ).scalar_one()
        return largest


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_batch_redoes_each_runs_phase_exactly_once(
    patient: ReactorProcesses, engine: Engine
) -> None:
    """The victim's worker has done the signals phase of two runs in one transaction and
    waits in the third's: SIGKILL. Nothing of the batch was committed, so the survivor
    does all three (and the rest) once: one committed marker per run, the survivor's."""
    create_marker_table(engine)
    with held_lock(engine):
        victim = patient.start("--concurrency", "1", "--sweep-interval", "1")
        with engine.begin() as conn:  # five runs due at once: a backlog for one worker
            run_ids = []
            for offset in range(5):
                run = get_or_create_run(conn, DAY + timedelta(days=offset), BATCH_REGION)
                run_ids.append(update_phase(conn, run, Phase.DATA_READY, actor="test").run_id)
        wait_until(
            lambda: lock_waiters(engine) == [victim.work_application_name],
            what="the victim mid-batch, waiting on the test's lock",
        )
        in_flight = batch_marks(engine, victim.work_application_name)
        assert len(in_flight) == BATCH_BLOCKS_AT, in_flight  # two done, the third waiting

        survivor = patient.start("--concurrency", "1", "--sweep-interval", "1")
        victim.kill()
        # The server ends the dead client's transaction, which frees its runs; the
        # survivor's sweep finds them and batches them, up to the same lock.
        wait_until(
            lambda: lock_waiters(engine) == [survivor.work_application_name],
            what="the survivor's batch waiting on the lock",
        )
    for run_id in run_ids:
        wait_for_phase(engine, run_id, Phase.COMPLETED)

    with engine.connect() as conn:
        marks = conn.execute(
            text("SELECT run_id, phase, application_name FROM process_markers")
        ).all()
    assert sorted((m.run_id, m.phase) for m in marks) == [(r, "DATA_READY") for r in run_ids]
    assert {m.application_name for m in marks} == {survivor.work_application_name}
    steps = forward_steps(engine)
    assert steps == Counter({(r, *move): 1 for r in run_ids for move in FORWARD})
    assert survivor.alive()


@pytest.mark.slow
def test_two_reactors_batching_a_backlog_make_every_transition_exactly_once(
    patient: ReactorProcesses, engine: Engine
) -> None:
    started = patient.start_many(2, "--concurrency", "4")
    run_ids = make_ready_in_one_transaction(engine, 300)
    wait_until(
        lambda: all(r.alive() for r in started) and forward_steps(engine).total() == 900,
        timeout=90,
        interval=0.1,
        what="every forward transition of 300 runs",
    )
    steps = forward_steps(engine)
    assert steps == Counter({(r, *move): 1 for r in run_ids for move in FORWARD})
    assert largest_transaction(engine) > 1, "no transaction stepped more than one run"
    with engine.connect() as conn:
        actors = set(
            conn.execute(
                text("SELECT DISTINCT actor FROM engine_run_events WHERE to_phase = 'COMPLETED'")
            ).scalars()
        )
    assert actors == {r.id for r in started}, actors
