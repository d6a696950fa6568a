"""The database's rules do not depend on the writer's session (SPEC section 3).

Ingestion jobs come with their own session settings: a DateStyle from the vendor's
locale, a TimeZone, a search_path that puts a schema of their own first. Two jobs
finishing a region's last two datasets at once must flip the run exactly once whatever
those are (sql/triggers/0008_session_independent_readiness.sql). Each job here is a real
ingestion job (``ingestion_batch``) on an engine of its own whose connections start with
the job's settings, as a job's ``PGOPTIONS`` or ``ALTER ROLE ... SET`` would give them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from prometheus.config import libpq_url
from prometheus.ingestion import require_datasets
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import ensure_run, find_run, run_events
from tests.support.lock_waits import lock_waiters
from tests.support.waiting import wait_until

DAY = date(2026, 3, 2)
REQUIRED = ("fundamentals", "prices")
ROUNDS = 25

Session = Mapping[str, str]
PLAIN: Session = {"DateStyle": "ISO, MDY", "TimeZone": "UTC"}
#: Every setting differs from PLAIN: another date order and format, a zone 14 hours from
#: UTC (another calendar day for part of every day), and a schema of the job's own first,
#: with an (empty) region_datasets of its own that an unpinned trigger would read.
ODD: Session = {
    "DateStyle": "German, DMY",
    "TimeZone": "Pacific/Kiritimati",
    "search_path": "job_own, public",
}
#: One setting at a time, so each failure names its cause.
CASES = {
    "datestyle": ({"DateStyle": "ISO, MDY"}, {"DateStyle": "German, DMY"}),
    "datestyle-sql": ({"DateStyle": "SQL, MDY"}, {"DateStyle": "Postgres, DMY"}),
    "search_path": ({}, {"search_path": "job_own, public"}),
    "everything": (PLAIN, ODD),
}


@pytest.fixture
def own_schema(engine: Engine) -> None:
    """The odd job's own schema, holding a table named like ours."""
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA job_own"))
        conn.execute(text("CREATE TABLE job_own.region_datasets (region text, dataset text)"))


#: A job's batch row, as a job in any language writes it (psycopg could not even read a
#: timestamptz back in a German DateStyle session, so no RETURNING here).
COMPLETE_BATCH = """
    INSERT INTO ingestion_batches (dataset, as_of_date, region, status, row_count, completed_at)
    VALUES (%s, %s, 'US', 'COMPLETE', 1, now())
    ON CONFLICT (dataset, as_of_date, region) DO UPDATE
    SET status = 'COMPLETE', row_count = 1, completed_at = now()
"""


@contextmanager
def job_session(db_url: str, settings: Session) -> Iterator[psycopg.Connection[Any]]:
    """A job's own connection, its session settings in place before its first statement."""
    with psycopg.connect(libpq_url(db_url), application_name="tests-job") as conn:
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        conn.commit()
        yield conn


def flips(engine: Engine, day: date) -> list[tuple[Phase, int]]:
    run = find_run(engine, day, "US")
    if run is None:
        return []
    events = run_events(engine, run.run_id)
    ready = [e for e in events if e.kind == "transition" and e.to_phase == Phase.DATA_READY]
    return [(run.phase, len(ready))]


@pytest.mark.usefixtures("own_schema")
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_second_job_waits_for_the_first_whatever_their_sessions(
    engine: Engine, db_url: str, case: str
) -> None:
    """Step by step: job 1 marks its dataset and keeps its transaction open; job 2, in
    another session, marks the last one. Job 2 must wait for job 1 (on the pair's lock)
    and then see its batch; deciding alone would leave the run waiting forever."""
    first_session, second_session = CASES[case]
    require_datasets(engine, "US", REQUIRED)
    errors: list[BaseException] = []
    done = threading.Event()

    def second_job() -> None:
        try:
            with job_session(db_url, second_session) as conn:
                conn.execute(COMPLETE_BATCH, ("fundamentals", DAY))
                conn.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    with (
        job_session(db_url, first_session) as first,
        psycopg.connect(libpq_url(db_url), autocommit=True) as watcher,
    ):
        first.execute(COMPLETE_BATCH, ("prices", DAY))
        thread = threading.Thread(target=second_job)
        thread.start()
        # Waiting is what the lock is for; finishing first is the bug (it decided alone).
        wait_until(
            lambda: done.is_set() or lock_waiters(watcher, "advisory") > 0,
            timeout=30,
            what="job 2 waiting on the pair's lock, or done",
        )
        first.commit()
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    assert flips(engine, DAY) == [(Phase.DATA_READY, 1)]


@pytest.mark.usefixtures("own_schema")
def test_jobs_racing_with_different_sessions_flip_each_run_exactly_once(
    engine: Engine, db_url: str
) -> None:
    """Two jobs per day, released together by a barrier just before they mark their
    batch, one in a plain session and one in an odd one, over many days (a race shows
    only sometimes); half the runs exist beforehand, half are created by the jobs."""
    require_datasets(engine, "US", REQUIRED)
    days = [DAY + timedelta(days=i) for i in range(ROUNDS)]
    errors: list[BaseException] = []
    with job_session(db_url, PLAIN) as plain, job_session(db_url, ODD) as odd:
        sessions = {"prices": plain, "fundamentals": odd}
        for i, day in enumerate(days):
            if i % 2:
                ensure_run(engine, day, "US", data_ready=False, actor="test")
            barrier = threading.Barrier(2)

            def job(dataset: str, day: date = day, barrier: threading.Barrier = barrier) -> None:
                conn = sessions[dataset]
                try:
                    barrier.wait(timeout=30)
                    conn.execute(COMPLETE_BATCH, (dataset, day))
                    conn.commit()
                except BaseException as exc:
                    conn.rollback()
                    errors.append(exc)

            threads = [threading.Thread(target=job, args=(d,)) for d in REQUIRED]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert errors == []

    assert {day: flips(engine, day) for day in days} == {
        day: [(Phase.DATA_READY, 1)] for day in days
    }


#: SQL helpers inlined into their (pinned) callers: a SET clause would forbid inlining,
#: and a SQL function not inlined is planned again on every call (0014).
INLINED = {
    "prometheus_is_legal_transition(text,text)",
    "prometheus_is_purgeable(text,date,date)",
    "prometheus_notify(text,text)",
    "prometheus_setting(text)",
}


def test_every_function_of_ours_pins_its_search_path(engine: Engine) -> None:
    """A function that resolves names through the caller's search_path reads whatever
    tables the caller's schemas hold; a new migration must pin it (see 0008). The few
    inlined helpers may not, and must then be SQL that reads no table."""
    with engine.connect() as conn:
        unpinned = conn.execute(
            text(
                "SELECT p.oid::regprocedure::text AS name, l.lanname AS language,"
                "       p.prosecdef AS definer, p.prosrc AS body"
                " FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
                " WHERE p.pronamespace = current_schema()::regnamespace"
                " AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c"
                "                 WHERE c LIKE 'search\\_path=%')"
                " ORDER BY 1"
            )
        ).all()
        tables = set(
            conn.execute(
                text(
                    "SELECT relname FROM pg_class"
                    " WHERE relnamespace = current_schema()::regnamespace"
                )
            ).scalars()
        )
    assert {f.name for f in unpinned} == INLINED
    for helper in unpinned:
        assert (helper.language, helper.definer) == ("sql", False), helper.name
        assert not {t for t in tables if t in helper.body}, helper.name
