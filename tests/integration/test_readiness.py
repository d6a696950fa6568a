"""The readiness rule, enforced by the database (sql/triggers/0005_ingestion_readiness.sql).

When the last dataset a region requires for a date turns COMPLETE, the run exists and
is DATA_READY in that same transaction, audited with actor ``db``; otherwise nothing
about the run changes. Every test writes batch rows the way an ingestion job does and
reads the durable result: the run row and its events.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import Engine, text

from prometheus.calendar import TradingCalendar
from prometheus.checks import BatchRegressed, CheckPolicy, find_problems
from prometheus.ingestion import (
    BatchKey,
    BatchStatus,
    copy_prices,
    drop_datasets,
    ingestion_batch,
    mark_batches,
    require_datasets,
)
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import (
    Event,
    Run,
    ensure_run,
    find_run,
    run_events,
    update_phase,
)
from tests.support.ingestion_data import (
    add_instruments,
    drain,
    listening,
    price_rows,
    snapshot,
)
from tests.support.waiting import wait_until

DAY = date(2026, 3, 2)
REQUIRED = ("fundamentals", "prices")


def mark(engine: Engine, day: date, region: str, status: BatchStatus, *datasets: str) -> None:
    with engine.begin() as conn:
        mark_batches(conn, [BatchKey(d, day, region) for d in datasets], status)


def run_of(engine: Engine, day: date = DAY, region: str = "US") -> Run:
    run = find_run(engine, day, region)
    assert run is not None, f"no run for {day} {region}"
    return run


def transitions_to(events: Sequence[Event], phase: Phase) -> list[Event]:
    return [e for e in events if e.kind == "transition" and e.to_phase == phase]


def test_only_the_last_required_batch_creates_and_flips_the_run(engine: Engine) -> None:
    require_datasets(engine, "US", REQUIRED)

    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    assert find_run(engine, DAY, "US") is None

    mark(engine, DAY, "US", BatchStatus.COMPLETE, "fundamentals")
    run = run_of(engine)
    assert run.phase is Phase.DATA_READY
    events = run_events(engine, run.run_id)
    assert [(e.from_phase, e.to_phase, e.actor) for e in events] == [
        (None, "WAITING_FOR_DATA", "db"),
        ("WAITING_FOR_DATA", "DATA_READY", "db"),
    ]
    assert events[1].detail == {"reason": "required datasets complete"}


def test_an_existing_waiting_run_is_flipped_by_the_last_batch(engine: Engine) -> None:
    require_datasets(engine, "US", REQUIRED)
    waiting = ensure_run(engine, DAY, "US", data_ready=False, actor="cli:ops")
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    mark(engine, DAY, "US", BatchStatus.RUNNING, "fundamentals")
    assert run_of(engine).phase is Phase.WAITING_FOR_DATA

    mark(engine, DAY, "US", BatchStatus.COMPLETE, "fundamentals")
    run = run_of(engine)
    assert (run.run_id, run.phase) == (waiting.run_id, Phase.DATA_READY)
    (flip,) = transitions_to(run_events(engine, run.run_id), Phase.DATA_READY)
    assert flip.actor == "db"


def test_other_dates_and_regions_are_not_touched(engine: Engine) -> None:
    require_datasets(engine, "US", ["prices"])
    require_datasets(engine, "EU", ["prices"])
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    assert run_of(engine).phase is Phase.DATA_READY
    assert find_run(engine, DAY, "EU") is None
    assert find_run(engine, DAY + timedelta(days=1), "US") is None


def test_the_flip_commits_with_the_batch_and_rolls_back_with_it(
    engine: Engine, db_url: str
) -> None:
    require_datasets(engine, "US", REQUIRED)
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    before = snapshot(db_url)

    with engine.connect() as conn:
        tx = conn.begin()
        mark_batches(conn, [BatchKey("fundamentals", DAY, "US")], BatchStatus.COMPLETE)
        inside = find_run(conn, DAY, "US")
        assert inside is not None and inside.phase is Phase.DATA_READY
        assert find_run(engine, DAY, "US") is None  # not visible before commit
        tx.rollback()

    assert snapshot(db_url) == before


def test_a_job_that_fails_changes_no_run(engine: Engine, db_url: str) -> None:
    require_datasets(engine, "US", ["prices"])
    try:
        with ingestion_batch(engine, "prices", DAY, "US") as batch:
            batch.rows += 1
            raise RuntimeError("vendor feed cut off")
    except RuntimeError:
        pass
    assert find_run(engine, DAY, "US") is None
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM ingestion_batches")).scalar_one()
    assert status == "FAILED"


def test_the_second_job_waits_for_the_first_and_sees_its_batch(engine: Engine) -> None:
    """The write skew, step by step: job 1 marks its dataset and holds its transaction
    open; job 2's mark must wait on the date/region lock (seen in pg_locks) instead of
    deciding "not ready" from a snapshot without job 1's batch."""
    require_datasets(engine, "US", REQUIRED)
    errors: list[BaseException] = []

    with engine.connect() as first:
        tx = first.begin()
        mark_batches(first, [BatchKey("prices", DAY, "US")], BatchStatus.COMPLETE)

        def second_job() -> None:
            try:
                mark(engine, DAY, "US", BatchStatus.COMPLETE, "fundamentals")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=second_job)
        thread.start()
        wait_until(lambda: _waiting_on_advisory_lock(engine), what="job 2 waiting on the lock")
        tx.commit()
    thread.join(timeout=30)
    assert not thread.is_alive() and not errors

    run = run_of(engine)
    assert run.phase is Phase.DATA_READY
    assert len(transitions_to(run_events(engine, run.run_id), Phase.DATA_READY)) == 1


def test_two_jobs_finishing_the_last_two_datasets_at_once_flip_exactly_once(
    engine: Engine,
) -> None:
    """Two real jobs (threads, own connections) released together by a barrier, 30
    times: a write skew shows only sometimes, so one lucky pass would prove nothing."""
    require_datasets(engine, "US", REQUIRED)
    days = [DAY + timedelta(days=i) for i in range(30)]
    errors: list[BaseException] = []
    for i, day in enumerate(days):
        if i % 2:  # half the time the run exists already, half the time it is created
            ensure_run(engine, day, "US", data_ready=False, actor="test")
        barrier = threading.Barrier(2)

        def job(dataset: str, day: date = day, barrier: threading.Barrier = barrier) -> None:
            try:
                with ingestion_batch(engine, dataset, day, "US") as batch:
                    barrier.wait(timeout=30)
                    batch.rows += 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=job, args=(d,)) for d in REQUIRED]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors

    for day in days:
        run = run_of(engine, day)
        flips = transitions_to(run_events(engine, run.run_id), Phase.DATA_READY)
        assert (run.phase, len(flips), flips[0].actor) == (Phase.DATA_READY, 1, "db"), day


def test_re_marking_complete_changes_nothing(engine: Engine) -> None:
    require_datasets(engine, "US", ["prices"])
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    run = run_of(engine)
    events = run_events(engine, run.run_id)

    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")

    assert run_of(engine) == run
    assert run_events(engine, run.run_id) == events


def test_a_run_past_data_ready_is_left_alone(engine: Engine) -> None:
    require_datasets(engine, "US", ["prices"])
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    started = update_phase(engine, run_of(engine), Phase.SIGNALS_DONE, actor="test")
    events = run_events(engine, started.run_id)

    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    assert run_of(engine) == started
    assert run_events(engine, started.run_id) == events


def test_a_failed_run_is_left_alone(engine: Engine) -> None:
    require_datasets(engine, "US", ["prices"])
    waiting = ensure_run(engine, DAY, "US", data_ready=False, actor="test")
    failed = update_phase(engine, waiting, Phase.FAILED, actor="test")
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    assert run_of(engine) == failed


def test_a_batch_regressing_after_the_run_started_is_recorded_and_reported(
    engine: Engine,
) -> None:
    require_datasets(engine, "US", REQUIRED)
    mark(engine, DAY, "US", BatchStatus.COMPLETE, *REQUIRED)
    started = update_phase(engine, run_of(engine), Phase.SIGNALS_DONE, actor="test")
    assert regressed_batches(engine) == []

    mark(engine, DAY, "US", BatchStatus.RUNNING, "prices")
    mark(engine, DAY, "US", BatchStatus.FAILED, "fundamentals")

    regressions = [e for e in run_events(engine, started.run_id) if e.kind == "batch_regressed"]
    assert [(e.actor, e.from_phase, e.to_phase, e.detail) for e in regressions] == [
        ("db", "SIGNALS_DONE", "SIGNALS_DONE", {"dataset": "prices", "status": "RUNNING"}),
        ("db", "SIGNALS_DONE", "SIGNALS_DONE", {"dataset": "fundamentals", "status": "FAILED"}),
    ]
    reported = regressed_batches(engine)
    assert [(r.run_id, r.dataset, r.status, r.phase) for r in reported] == [
        (started.run_id, "fundamentals", "FAILED", "SIGNALS_DONE"),
        (started.run_id, "prices", "RUNNING", "SIGNALS_DONE"),
    ]
    assert run_of(engine) == started  # recorded, not acted on

    mark(engine, DAY, "US", BatchStatus.COMPLETE, *REQUIRED)
    assert regressed_batches(engine) == []
    assert run_of(engine) == started


def test_regressions_before_the_run_starts_or_of_unrequired_data_are_not_events(
    engine: Engine,
) -> None:
    require_datasets(engine, "US", REQUIRED)
    ensure_run(engine, DAY, "US", data_ready=False, actor="test")
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices", "news")
    mark(engine, DAY, "US", BatchStatus.FAILED, "prices")  # run still waiting
    mark(engine, DAY, "US", BatchStatus.COMPLETE, *REQUIRED)
    mark(engine, DAY, "US", BatchStatus.FAILED, "news")  # not required

    run = run_of(engine)
    assert run.phase is Phase.DATA_READY
    assert [e.kind for e in run_events(engine, run.run_id) if e.kind != "transition"] == []
    assert regressed_batches(engine) == []


def test_a_region_without_required_datasets_never_turns_ready_by_itself(
    engine: Engine, db_url: str
) -> None:
    waiting = ensure_run(engine, DAY, "APAC", data_ready=False, actor="test")
    before = snapshot(db_url)["engine_run_events"]
    mark(engine, DAY, "APAC", BatchStatus.COMPLETE, "prices", "fundamentals")
    mark(engine, DAY + timedelta(days=1), "APAC", BatchStatus.COMPLETE, "prices")

    assert run_of(engine, DAY, "APAC") == waiting
    assert find_run(engine, DAY + timedelta(days=1), "APAC") is None
    assert snapshot(db_url)["engine_run_events"] == before


def test_dropping_the_requirement_a_run_waits_on_makes_it_ready(engine: Engine) -> None:
    require_datasets(engine, "US", REQUIRED)
    waiting = ensure_run(engine, DAY, "US", data_ready=False, actor="test")
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")
    assert run_of(engine).phase is Phase.WAITING_FOR_DATA

    assert drop_datasets(engine, "US", ["fundamentals"]) == ["fundamentals"]
    run = run_of(engine)
    assert (run.run_id, run.phase) == (waiting.run_id, Phase.DATA_READY)
    (flip,) = transitions_to(run_events(engine, run.run_id), Phase.DATA_READY)
    assert flip.actor == "db"


def test_requiring_datasets_already_in_readies_waiting_runs_but_creates_none(
    engine: Engine,
) -> None:
    ensure_run(engine, DAY, "EU", data_ready=False, actor="test")
    mark(engine, DAY, "EU", BatchStatus.COMPLETE, *REQUIRED)
    mark(engine, DAY + timedelta(days=1), "EU", BatchStatus.COMPLETE, *REQUIRED)

    require_datasets(engine, "EU", REQUIRED)  # one statement: the whole list at once
    assert run_of(engine, DAY, "EU").phase is Phase.DATA_READY
    assert find_run(engine, DAY + timedelta(days=1), "EU") is None


def test_a_run_created_after_its_data_is_in_is_ready_at_once(engine: Engine) -> None:
    mark(engine, DAY, "US", BatchStatus.COMPLETE, "prices")  # nothing required yet
    require_datasets(engine, "US", ["prices"])  # no run waits: none is created
    assert find_run(engine, DAY, "US") is None

    run = ensure_run(engine, DAY, "US", data_ready=False, actor="cli:ops")
    assert run_of(engine).phase is Phase.DATA_READY
    events = run_events(engine, run.run_id)
    assert [(e.to_phase, e.actor) for e in events] == [
        ("WAITING_FOR_DATA", "cli:ops"),
        ("DATA_READY", "db"),
    ]


def test_one_statement_completing_50_pairs_sends_50_notifications(
    engine: Engine, db_url: str
) -> None:
    """100 batch rows (2 datasets x 25 dates x 2 regions) in one statement: one
    notification per date and region, not one per row, and 50 runs flipped."""
    require_datasets(engine, "US", REQUIRED)
    require_datasets(engine, "EU", REQUIRED)
    days = [DAY + timedelta(days=i) for i in range(25)]
    keys = [BatchKey(d, day, r) for day in days for r in ("US", "EU") for d in REQUIRED]

    with listening(db_url, "prometheus_ingestion") as listener:
        with engine.begin() as conn:
            mark_batches(conn, keys, BatchStatus.COMPLETE)
        received = drain(listener, engine)

    payloads = [json.loads(n.payload) for n in received]
    assert len(payloads) == 50
    assert {(p["as_of_date"], p["region"]) for p in payloads} == {
        (day.isoformat(), r) for day in days for r in ("US", "EU")
    }
    assert all((p["dataset"], p["dataset_count"]) == (REQUIRED[0], 2) for p in payloads)
    with engine.connect() as conn:
        ready = conn.execute(
            text("SELECT count(*) FROM engine_runs WHERE phase = 'DATA_READY'")
        ).scalar_one()
    assert ready == 50


def test_a_50000_row_copy_sends_no_per_row_notifications(engine: Engine, db_url: str) -> None:
    """prices_daily has no trigger of ours (the batch row is the signal), so a 50,000-row
    COPY costs no notification at all; the batch that completes it sends one, and the
    run it creates and flips sends two on the engine_runs channel."""
    ids = [f"I{n:05d}" for n in range(50_000)]
    add_instruments(engine, "US", ids)
    require_datasets(engine, "US", ["prices"])

    with listening(db_url, "prometheus_ingestion", "prometheus_engine_runs") as listener:
        with ingestion_batch(engine, "prices", DAY, "US") as batch:
            batch.rows += copy_prices(batch.conn, DAY, price_rows(ids))
        received = drain(listener, engine)

    channels = [n.channel for n in received]
    assert channels.count("prometheus_ingestion") == 1
    assert channels.count("prometheus_engine_runs") == 2  # created, then DATA_READY
    with engine.connect() as conn:
        user_triggers = conn.execute(
            text(
                "SELECT count(*) FROM pg_trigger"
                " WHERE tgrelid = 'prices_daily'::regclass AND NOT tgisinternal"
            )
        ).scalar_one()
        loaded = conn.execute(text("SELECT count(*) FROM prices_daily")).scalar_one()
    assert (user_triggers, loaded) == (0, 50_000)


def _waiting_on_advisory_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND NOT l.granted"
                " AND d.datname = current_database()"
            )
        ).scalar_one()
    return bool(waiting)


def regressed_batches(engine: Engine) -> list[BatchRegressed]:
    """What `prometheus check` reports as BATCH_REGRESSED."""
    report = find_problems(engine, CheckPolicy(), calendar=TradingCalendar())
    return [p for p in report.problems if isinstance(p, BatchRegressed)]
