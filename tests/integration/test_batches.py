"""Several runs stepped in one transaction (a reactor worker's batch under a backlog):
each run's failure is still its own attempt (a deferred constraint its task broke
included), one commit makes the others' steps true, a failure outside every task's
savepoint is sorted out run by run, and without a backlog a transaction holds one run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from structlog.testing import capture_logs

from prometheus.config import Settings, libpq_url
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Outcome, advance_batch, ensure_run, get_run, run_events
from prometheus.pipeline.stepping import BatchLimits
from tests.support.task_modules import PLUGIN_INSTRUMENTS

DAY = date(2026, 11, 24)
ROOMY = BatchLimits(max_runs=16, max_seconds=60.0)  # count-bound: a busy machine is slow


@pytest.fixture
def plugin(settings: Settings) -> Settings:
    return replace(settings, phase_tasks="tests.support.task_modules", max_attempts=3)


@pytest.fixture
def raw(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


def ready(engine: Engine, regions: list[str]) -> list[int]:
    return [
        ensure_run(engine, DAY + timedelta(days=i), region, data_ready=True, actor="setup").run_id
        for i, region in enumerate(regions)
    ]


def scores(raw: psycopg.Connection[Any], run_id: int) -> list[str]:
    rows = raw.execute(
        "SELECT instrument_id FROM signal_scores WHERE run_id = %s ORDER BY 1", (run_id,)
    )
    return [r[0] for r in rows]


def transactions(raw: psycopg.Connection[Any], run_ids: list[int]) -> dict[int, set[str]]:
    """For each run, the transactions (xmin) that wrote its phase change from DATA_READY
    (outside any savepoint: a row written inside one carries the savepoint's own xid)."""
    found: dict[int, set[str]] = {}
    for run_id, xmin in raw.execute(
        "SELECT run_id, xmin::text FROM engine_run_events"
        " WHERE run_id = ANY(%s) AND from_phase = 'DATA_READY' AND kind = 'transition'",
        (run_ids,),
    ):
        found.setdefault(run_id, set()).add(xmin)
    return found


def test_a_failing_task_in_a_batch_is_its_own_attempt_and_the_others_commit(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    """FLAKY writes a partial row and raises on its first attempt: that run's writes roll
    back to its savepoint and its attempt is counted once, while the runs before and after
    it in the same transaction move on. Its retry then succeeds."""
    first, flaky, last = ready(engine, ["US", "FLAKY", "US"])
    steps = advance_batch(engine, runs=(), limits=ROOMY, settings=plugin, actor="worker")
    assert [(s.run.run_id if s.run else None, s.outcome) for s in steps] == [
        (first, Outcome.ADVANCED),
        (flaky, Outcome.RETRY_SCHEDULED),
        (last, Outcome.ADVANCED),
    ]
    moved = transactions(raw, [first, last])
    assert len(set().union(*moved.values())) == 1, moved  # one transaction, one commit
    for run_id in (first, last):
        assert scores(raw, run_id) == sorted(PLUGIN_INSTRUMENTS)
    assert scores(raw, flaky) == []  # the partial row rolled back with the attempt
    failed = get_run(engine, flaky)
    assert failed is not None and (failed.phase, failed.attempts) == (Phase.DATA_READY, 1)

    retried = advance_batch(engine, runs=[first, last], limits=ROOMY, settings=plugin, actor="w")
    assert {(s.run.run_id if s.run else None, s.outcome) for s in retried} >= {
        (flaky, Outcome.ADVANCED)
    }
    assert scores(raw, flaky) == sorted(PLUGIN_INSTRUMENTS)
    attempts = [e.kind for e in run_events(engine, flaky) if e.kind == "attempt_failed"]
    assert attempts == ["attempt_failed"]


def test_a_deferred_constraint_broken_in_a_batch_fails_that_run_alone(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    """A task breaks a deferred constraint: checked inside its savepoint when it returns,
    the failure is its own attempt, counted in the batch's transaction, and the runs
    before and after it move on in that same transaction."""
    good, culprit, other = ready(engine, ["US", "BREAKS_DEFERRED", "EU"])
    slow = replace(plugin, retry_base=timedelta(minutes=5))
    with capture_logs() as logs:
        steps = advance_batch(engine, runs=(), limits=ROOMY, settings=slow, actor="worker")
    assert "batch.failed" not in [line["event"] for line in logs]
    assert [(s.run.run_id if s.run else None, s.outcome) for s in steps] == [
        (good, Outcome.ADVANCED),
        (culprit, Outcome.RETRY_SCHEDULED),
        (other, Outcome.ADVANCED),
    ]
    moved = transactions(raw, [good, other])
    assert len(set().union(*moved.values())) == 1, moved  # one transaction, one commit
    after = get_run(engine, culprit)
    assert after is not None and (after.phase, after.attempts) == (Phase.DATA_READY, 1)
    assert after.last_error is not None and "ForeignKeyViolation" in after.last_error


def test_deferred_constraints_wait_for_the_end_of_each_task_of_a_batch(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    """DEFERS breaks a deferred constraint and then mends it. Each task of a batch has its
    deferrable constraints deferred to its own end, whatever its place: the check after
    one task does not leave the next with them immediate."""
    runs = ready(engine, ["DEFERS", "DEFERS", "DEFERS"])
    steps = advance_batch(engine, runs=(), limits=ROOMY, settings=plugin, actor="worker")
    assert [(s.run.run_id if s.run else None, s.outcome) for s in steps] == [
        (run_id, Outcome.ADVANCED) for run_id in runs
    ]
    assert len(set().union(*transactions(raw, runs).values())) == 1


def test_a_batch_whose_phase_change_fails_is_done_again_run_by_run(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    """The failure comes outside every task's savepoint: a trigger of someone else's
    refuses one run's phase change. Whose it was cannot be told from the batch, so each
    run is stepped again alone. The culprit's attempt is counted once, apart; the others'
    steps are made once."""
    raw.execute(
        "CREATE FUNCTION refuse_jp() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'refused: %', NEW.region; END $$"
    )
    raw.execute(
        "CREATE CONSTRAINT TRIGGER refuse_jp AFTER UPDATE ON engine_runs"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
        " WHEN (NEW.region = 'JP' AND NEW.phase = 'SIGNALS_DONE') EXECUTE FUNCTION refuse_jp()"
    )
    good, other, culprit = ready(engine, ["US", "EU", "JP"])  # JP's change comes last
    slow = replace(plugin, retry_base=timedelta(minutes=5))
    with capture_logs() as logs:
        steps = advance_batch(engine, runs=(), limits=ROOMY, settings=slow, actor="worker")
    assert "batch.failed" in [line["event"] for line in logs]
    outcomes = {s.run.run_id: s.outcome for s in steps if s.run is not None}
    assert outcomes == {
        good: Outcome.ADVANCED,
        culprit: Outcome.RETRY_SCHEDULED,
        other: Outcome.ADVANCED,
    }
    for run_id in (good, other):
        moved = [(e.from_phase, e.to_phase) for e in run_events(engine, run_id)]
        assert moved.count(("DATA_READY", "SIGNALS_DONE")) == 1
    after = get_run(engine, culprit)
    assert after is not None and (after.phase, after.attempts) == (Phase.DATA_READY, 1)
    assert after.last_error is not None and "refused: JP" in after.last_error
    assert [e.kind for e in run_events(engine, culprit)].count("attempt_failed") == 1


def test_without_a_backlog_a_transaction_holds_one_run(
    engine: Engine, plugin: Settings, raw: psycopg.Connection[Any]
) -> None:
    """One run due: it is stepped alone, and committed before anything else is looked at.
    With the batch limit at one run, a backlog too is taken one run per transaction."""
    (only,) = ready(engine, ["US"])
    steps = advance_batch(engine, runs=(), limits=ROOMY, settings=plugin, actor="worker")
    assert [s.run.run_id for s in steps if s.run] == [only]
    runs = ready(engine, ["EU", "JP", "UK"])
    one_each = BatchLimits(max_runs=1, max_seconds=60.0)
    stepped = []
    for _ in range(4):
        steps = advance_batch(engine, runs=(), limits=one_each, settings=plugin, actor="w")
        assert len(steps) == 1
        stepped += [s.run.run_id for s in steps if s.run]
    assert sorted(stepped) == sorted([only, *runs])  # only's next phase among them
    assert len(set().union(*transactions(raw, runs).values())) == 3


def test_a_batch_stops_growing_at_its_time_limit(engine: Engine, plugin: Settings) -> None:
    """SLOWFAILS spends 1.5 s in its task: past a 0.5 s limit the batch steps no further
    run, though it claimed the one after it; that one waits for the next transaction."""
    first, slow, left = ready(engine, ["US", "SLOWFAILS", "US"])
    limits = BatchLimits(max_runs=16, max_seconds=0.5)
    plugin = replace(plugin, retry_base=timedelta(minutes=5))
    steps = advance_batch(engine, runs=(), limits=limits, settings=plugin, actor="worker")
    assert [(s.run.run_id if s.run else None, s.outcome) for s in steps] == [
        (first, Outcome.ADVANCED),
        (slow, Outcome.RETRY_SCHEDULED),
    ]
    run = get_run(engine, left)
    assert run is not None and run.phase is Phase.DATA_READY
    steps = advance_batch(engine, runs=(), limits=limits, settings=plugin, actor="worker")
    assert [s.run.run_id for s in steps if s.run] == [left, first]  # first: its next phase
