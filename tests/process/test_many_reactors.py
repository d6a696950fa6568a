"""Three reactors, one database, hundreds of runs: work is shared and never doubled."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Engine, text

from tests.support.reactor_process import ReactorProcesses
from tests.support.waiting import wait_until

RUNS = 300
FORWARD = (
    ("DATA_READY", "SIGNALS_DONE"),
    ("SIGNALS_DONE", "UNIVERSES_DONE"),
    ("UNIVERSES_DONE", "COMPLETED"),
)


def make_ready_in_one_transaction(engine: Engine, count: int) -> list[int]:
    """``count`` runs (one region, consecutive dates) created and made DATA_READY by one
    transaction, so every reactor is woken for all of them at once."""
    with engine.begin() as conn:
        run_ids = list(
            conn.execute(
                text(
                    "INSERT INTO engine_runs (as_of_date, region)"
                    " SELECT DATE '2020-01-01' + g, 'US' FROM generate_series(0, :n - 1) g"
                    " RETURNING run_id"
                ),
                {"n": count},
            ).scalars()
        )
        conn.execute(
            text("UPDATE engine_runs SET phase = 'DATA_READY' WHERE run_id = ANY(:ids)"),
            {"ids": run_ids},
        )
    return run_ids


def completed(engine: Engine) -> int:
    with engine.connect() as conn:
        done: int = conn.execute(
            text("SELECT count(*) FROM engine_runs WHERE phase = 'COMPLETED'")
        ).scalar_one()
        return done


@pytest.mark.slow
def test_three_reactors_make_every_transition_of_300_runs_exactly_once(
    reactors: ReactorProcesses, engine: Engine
) -> None:
    started = reactors.start_many(3, "--concurrency", "4")
    run_ids = make_ready_in_one_transaction(engine, RUNS)

    def all_completed() -> bool:
        for reactor in started:
            assert reactor.alive(), f"{reactor.name} died: exit code {reactor.proc.returncode}"
        return completed(engine) == RUNS

    wait_until(all_completed, timeout=90, interval=0.1, what=f"all {RUNS} runs COMPLETED")

    with engine.connect() as conn:
        events = conn.execute(
            text(
                "SELECT run_id, kind, from_phase, to_phase, actor FROM engine_run_events"
                " WHERE from_phase IS DISTINCT FROM 'WAITING_FOR_DATA' AND from_phase IS NOT NULL"
            )
        ).all()
    assert {e.kind for e in events} == {"transition"}  # no attempt failed
    steps = Counter((e.run_id, e.from_phase, e.to_phase) for e in events)
    doubled = {step: n for step, n in steps.items() if n > 1}
    assert not doubled, f"transitions made more than once: {doubled}"
    assert set(steps) == {(run_id, *move) for run_id in run_ids for move in FORWARD}
    assert sum(steps.values()) == 3 * RUNS

    ours = {reactor.id for reactor in started}
    by_actor = Counter(e.actor for e in events)
    assert set(by_actor) <= ours, f"transitions by strangers: {by_actor}"
    assert len(by_actor) >= 2, f"one reactor did all the work: {by_actor}"
