"""Notifications carry keys only: no statement is too wide to notify (SPEC section 3).

A payload over NOTIFY's 8,000 bytes fails the writer's statement, so a payload that
listed what a statement touched could fail an ingestion job. The triggers send keys and
a count, with text cut short (sql/triggers/0009_key_only_payloads.sql), and the reactor
accepts every payload the database can send.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import psycopg
from sqlalchemy import Engine

from prometheus.config import Settings, libpq_url
from prometheus.ingestion import BatchKey, BatchStatus, mark_batches, require_datasets
from prometheus.orchestration.notifications import (
    Channel,
    DataArrived,
    RunChanged,
    parse_notification,
)
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import find_run
from tests.support import reactor_tasks
from tests.support.ingestion_data import drain, listening
from tests.support.inprocess import ReactorThreads
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)
#: 200 names of 64 characters (the longest a job may use): ~13 KB if listed.
WIDE = [f"vendor_feed_{n:03d}_".ljust(64, "x") for n in range(200)]
#: Text only a raw writer could put in a row: long, and expensive to JSON-escape.
HUGE_REGION = '"\x01' * 5_000
HUGE_DATASET = "\\" * 9_000


def test_a_statement_completing_200_datasets_runs_through_the_notification(
    reactors: ReactorThreads, engine: Engine, settings: Settings
) -> None:
    """The job succeeds, and a reactor whose next sweep is a minute away completes the
    run: only its start-up sweeps ran (at start and once listening), before the data
    existed."""
    require_datasets(engine, "US", WIDE)
    running = reactors.start(
        replace(
            settings,
            phase_tasks=reactor_tasks.MODULE,
            sweep_interval=timedelta(seconds=60),
            metrics_port=0,
        )
    )
    running.wait_ready()
    start_up_sweeps = running.sample("prometheus_sweeps_total")
    assert start_up_sweeps >= 1
    assert find_run(engine, DAY, "US") is None

    with engine.begin() as conn:
        records = mark_batches(conn, [BatchKey(d, DAY, "US") for d in WIDE], BatchStatus.COMPLETE)
    assert len(records) == len(WIDE)

    def completed() -> bool:
        run = find_run(engine, DAY, "US")
        return run is not None and run.phase is Phase.COMPLETED

    wait_until(completed, timeout=30, what="the run COMPLETED")
    ingestion = {"channel": Channel.INGESTION.value}
    wait_until(
        lambda: running.sample("prometheus_notifications_total", ingestion) == 1,
        timeout=30,
        what="the ingestion notification received",
    )
    assert running.sample("prometheus_notifications_malformed_total", ingestion) == 0
    assert running.sample("prometheus_sweeps_total") == start_up_sweeps


def test_the_ingestion_payload_is_keys_and_a_count(engine: Engine, db_url: str) -> None:
    with listening(db_url, Channel.INGESTION) as listener:
        with engine.begin() as conn:
            mark_batches(conn, [BatchKey(d, DAY, "US") for d in WIDE], BatchStatus.COMPLETE)
        (notice,) = drain(listener, engine)

    assert json.loads(notice.payload) == {
        "as_of_date": "2026-11-24",
        "region": "US",
        "dataset": WIDE[0],
        "dataset_count": 200,
    }
    assert parse_notification(notice.channel, notice.payload) == DataArrived(
        DAY, "US", WIDE[0], 200
    )


def test_any_text_in_a_row_gives_a_short_payload_the_reactor_accepts(
    engine: Engine, db_url: str
) -> None:
    """A raw writer may put anything in a region or a dataset name; the statement still
    succeeds, each payload stays under 1 KiB, and it parses (cut text and all)."""
    with (
        listening(db_url, Channel.INGESTION, Channel.ENGINE_RUNS) as listener,
        psycopg.connect(libpq_url(db_url)) as writer,
    ):
        writer.execute(
            "INSERT INTO region_datasets (region, dataset) VALUES (%s, %s)",
            (HUGE_REGION, HUGE_DATASET),
        )
        writer.execute(
            "INSERT INTO ingestion_batches (dataset, as_of_date, region, status)"
            " VALUES (%s, %s, %s, 'COMPLETE')",
            (HUGE_DATASET, DAY, HUGE_REGION),
        )
        writer.commit()
        received = drain(listener, engine)

    # The batch, then the run it created and made ready.
    assert [n.channel for n in received] == [Channel.INGESTION] + [Channel.ENGINE_RUNS] * 2
    assert all(len(n.payload.encode()) < 1024 for n in received)
    parsed = [parse_notification(n.channel, n.payload) for n in received]
    assert parsed[0] == DataArrived(DAY, HUGE_REGION[:64], HUGE_DATASET[:64], 1)
    run = find_run(engine, DAY, HUGE_REGION)
    assert run is not None and run.phase is Phase.DATA_READY
    assert parsed[1:] == [
        RunChanged(run.run_id, Phase.WAITING_FOR_DATA, DAY, HUGE_REGION[:64]),
        RunChanged(run.run_id, Phase.DATA_READY, DAY, HUGE_REGION[:64]),
    ]
