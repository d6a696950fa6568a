"""A running phase holds its run against other claims and overrides, and against nothing
else: the claim is ``FOR NO KEY UPDATE``, which a foreign-key check (``FOR KEY SHARE``) does
not wait for. A phase may run for an hour; an ingestion job must not wait that hour."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from prometheus.config import Settings, libpq_url
from prometheus.ingestion import BatchKey, BatchStatus, mark_batches, require_datasets
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Outcome, Step, advance_run, find_run, run_events
from tests.support.lock_waits import lock_waiters
from tests.support.task_modules import BLOCKING_LOCK
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)
REGION = "BLOCKS"  # tests.support.task_modules: its signals task waits on BLOCKING_LOCK


@pytest.fixture
def raw(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


def test_a_batch_reopened_while_a_phase_runs_returns_at_once_and_is_recorded(
    engine: Engine, settings: Settings, raw: psycopg.Connection[Any]
) -> None:
    require_datasets(engine, REGION, ["prices"])
    with engine.begin() as conn:
        mark_batches(conn, [BatchKey("prices", DAY, REGION)], BatchStatus.COMPLETE)
    run = find_run(engine, DAY, REGION)
    assert run is not None and run.phase is Phase.DATA_READY

    plugin = replace(settings, phase_tasks="tests.support.task_modules")
    steps: list[Step] = []
    raw.execute("SELECT pg_advisory_lock(%s)", (BLOCKING_LOCK,))
    try:
        phase = threading.Thread(
            target=lambda: steps.append(advance_run(engine, run, settings=plugin, actor="w"))
        )
        phase.start()
        wait_until(
            lambda: lock_waiters(raw, "advisory") == 1,
            timeout=10,
            what="the signals phase running (its task waits on the test's lock)",
        )
        # The job re-runs the dataset: its RUNNING mark writes a batch_regressed event,
        # whose foreign key to engine_runs is checked against the claimed row. A bounded
        # wait turns a regression into a failed assertion rather than a hung test.
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '3s'"))
            mark_batches(conn, [BatchKey("prices", DAY, REGION)], BatchStatus.RUNNING)
        regressed = [e for e in run_events(engine, run.run_id) if e.kind == "batch_regressed"]
        assert [(e.from_phase, e.detail) for e in regressed] == [
            ("DATA_READY", {"dataset": "prices", "status": "RUNNING"})
        ]
        assert phase.is_alive()  # the phase was running all along
    finally:
        raw.execute("SELECT pg_advisory_unlock(%s)", (BLOCKING_LOCK,))
    phase.join(timeout=30)
    assert [(s.outcome, s.run.phase if s.run else None) for s in steps] == [
        (Outcome.ADVANCED, Phase.SIGNALS_DONE)
    ]
