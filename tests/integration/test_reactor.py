"""The reactor in-process, against a real database: notifications, sweeps, faults.

Every reactor here runs with ``sweep_interval`` of an hour, so after its start-up and
reconnect sweeps only what the test is about (a notification, a reconnect, a backoff
ending) can move a run. Tasks are the no-op plug-ins of ``tests.support.reactor_tasks``,
which fail or wait only where the database's plan says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from structlog.testing import capture_logs

from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.orchestration.notifications import Channel
from prometheus.pipeline.calendar_runs import CALENDAR_LOOKBACK, ensure_calendar_runs
from prometheus.pipeline.phases import TERMINAL, Phase
from prometheus.pipeline.state import (
    ensure_run,
    get_or_create_run,
    get_run,
    list_runs,
    run_events,
    update_phase,
)
from tests.support import reactor_tasks
from tests.support.inprocess import ReactorThreads, RunningReactor
from tests.support.proxy import Proxy
from tests.support.waiting import wait_until

DEADLINE = 30.0
HOUR = timedelta(hours=1)
TRANSITIONS = [
    (None, "WAITING_FOR_DATA"),
    ("WAITING_FOR_DATA", "DATA_READY"),
    ("DATA_READY", "SIGNALS_DONE"),
    ("SIGNALS_DONE", "UNIVERSES_DONE"),
    ("UNIVERSES_DONE", "COMPLETED"),
]


@pytest.fixture
def reactor_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        phase_tasks=reactor_tasks.MODULE,
        sweep_interval=HOUR,
        concurrency=2,
        metrics_port=0,
    )


@pytest.fixture
def admin(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection of the test's own, for NOTIFY, locks and terminations."""
    with psycopg.connect(db_url, autocommit=True, application_name="tests-admin") as conn:
        yield conn


def make_ready(engine: Engine, day: date, region: str = "US", *, notify: bool = True) -> int:
    """A run for (day, region) made DATA_READY; ``notify=False`` loses its notification."""
    with engine.begin() as conn:
        run = get_or_create_run(conn, day, region, actor="test")
        return update_phase(conn, run, Phase.DATA_READY, actor="test", notify=notify).run_id


def wait_phase(engine: Engine, run_id: int, phase: Phase = Phase.COMPLETED) -> None:
    def reached() -> Phase | None:
        run = get_run(engine, run_id)
        if run and run.phase in TERMINAL and run.phase is not phase:
            raise AssertionError(f"run {run_id} ended {run.phase}, not {phase}: {run}")
        return run.phase if run and run.phase is phase else None

    try:
        wait_until(reached, timeout=DEADLINE, interval=0.02, what=f"run {run_id} {phase}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; run is {get_run(engine, run_id)}") from None


def history(engine: Engine, run_id: int) -> list[tuple[str, str | None, str]]:
    return [(e.kind, e.from_phase, e.to_phase) for e in run_events(engine, run_id)]


def transitions(engine: Engine, run_id: int) -> list[tuple[str | None, str]]:
    return [(f, t) for kind, f, t in history(engine, run_id) if kind == "transition"]


def notify(conn: psycopg.Connection[Any], channel: str, payload: str) -> None:
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def backend_pids(conn: psycopg.Connection[Any], *names: str) -> set[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = ANY(%s)", (list(names),)
    )
    return {pid for (pid,) in rows}


def terminate(conn: psycopg.Connection[Any], pids: set[int]) -> None:
    for pid in pids:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def healthz_is(running: RunningReactor, code: int) -> dict[str, Any] | None:
    status, report = running.healthz()
    return report if status == code else None


# -- 1. notifications ------------------------------------------------------------------


def test_a_notification_advances_a_run_to_completed(
    reactors: ReactorThreads, engine: Engine, reactor_settings: Settings
) -> None:
    running = reactors.start(reactor_settings)
    running.wait_ready()

    run_id = make_ready(engine, date(2026, 11, 24))

    wait_phase(engine, run_id)
    assert transitions(engine, run_id) == TRANSITIONS
    # The advance was started by the notification (a sweep records no latency).
    assert running.sample("prometheus_notification_to_start_seconds_count") == 1


def test_a_completed_ingestion_batch_alone_advances_its_run(
    reactors: ReactorThreads, engine: Engine, reactor_settings: Settings
) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO region_datasets VALUES ('US', 'prices')"))
    running = reactors.start(reactor_settings)
    running.wait_ready()

    day = date(2026, 11, 24)
    with engine.begin() as conn:
        # Only the ingestion channel speaks: the run's own DATA_READY stays silent.
        conn.execute(text("SELECT set_config('prometheus.notify', 'off', true)"))
        conn.execute(
            text(
                "INSERT INTO ingestion_batches (dataset, as_of_date, region, status, row_count)"
                " VALUES ('prices', :day, 'US', 'COMPLETE', 1)"
            ),
            {"day": day},
        )
        run_id = conn.execute(
            text("SELECT run_id FROM engine_runs WHERE as_of_date = :day AND region = 'US'"),
            {"day": day},
        ).scalar_one()

    wait_phase(engine, run_id)
    assert running.sample("prometheus_notifications_total", {"channel": Channel.INGESTION}) >= 1
    assert transitions(engine, run_id)[-1] == ("UNIVERSES_DONE", "COMPLETED")


# -- 2. a notification nobody heard ---------------------------------------------------------


def test_the_start_up_sweep_finds_a_run_made_ready_while_no_reactor_ran(
    reactors: ReactorThreads, engine: Engine, reactor_settings: Settings
) -> None:
    run_id = make_ready(engine, date(2026, 11, 24))  # notified to nobody

    reactors.start(reactor_settings)

    wait_phase(engine, run_id)
    assert transitions(engine, run_id) == TRANSITIONS


# -- 3. garbage on the channels -------------------------------------------------------------

#: Near NOTIFY's limit (8,000 bytes): size alone must not make a payload malformed.
PAD = "x" * 7_850
MALFORMED = {
    Channel.ENGINE_RUNS: [
        "not json",
        "[1, 2, 3]",
        '{"run_id": "abc", "phase": "DATA_READY"}',
        '{"run_id": true, "phase": "DATA_READY"}',
        '{"run_id": -5, "phase": "DATA_READY"}',
        '{"phase": "DATA_READY"}',
        '{"run_id": 5}',
        PAD,
    ],
    Channel.INGESTION: [
        "not json",
        "[]",
        '{"as_of_date": "2026-02-30", "region": "US", "dataset": "prices", "dataset_count": 1}',
        '{"as_of_date": 20261124, "region": "US", "dataset": "prices", "dataset_count": 1}',
        '{"region": "US"}',
        '{"as_of_date": "2026-11-24", "region": "", "dataset": "prices", "dataset_count": 1}',
        '{"as_of_date": "2026-11-24", "region": "US", "dataset": "prices", "dataset_count": 0}',
        json.dumps({"as_of_date": "2026-11-24", "region": "US", "dataset": PAD}),
    ],
    Channel.HOLDS: [
        "not json",
        "{}",
        '{"hold_id": 0, "hold_count": 1}',
        '{"hold_id": "7", "hold_count": 1}',
        '{"hold_id": 7}',
        json.dumps({"hold_id": 7, "hold_count": PAD}),
    ],
}
WELL_FORMED_BUT_UNKNOWN = {
    Channel.ENGINE_RUNS: [
        '{"run_id": 999999, "phase": "DATA_READY"}',
        json.dumps({"run_id": 999998, "phase": "DATA_READY", "pad": PAD}),
    ],
    Channel.INGESTION: [
        '{"as_of_date": "2026-11-24", "region": "ZZ", "dataset": "prices", "dataset_count": 1}',
        json.dumps(
            {"as_of_date": "2026-11-24", "region": "Z" + PAD, "dataset": "p", "dataset_count": 9}
        ),
    ],
    Channel.HOLDS: [
        '{"hold_id": 424242, "hold_count": 1}',
        json.dumps({"hold_id": 424243, "hold_count": 2, "pad": PAD}),
    ],
}


def test_malformed_payloads_on_every_channel_are_counted_and_ignored(
    reactors: ReactorThreads,
    engine: Engine,
    reactor_settings: Settings,
    admin: psycopg.Connection[Any],
) -> None:
    running = reactors.start(reactor_settings)
    running.wait_ready()
    large = [p[-1] for c in Channel for p in (MALFORMED[c], WELL_FORMED_BUT_UNKNOWN[c])]
    assert all(7_800 < len(p.encode()) < 8_000 for p in large)

    for channel in Channel:
        for payload in MALFORMED[channel] + WELL_FORMED_BUT_UNKNOWN[channel]:
            notify(admin, channel, payload)

    sent = {c: len(MALFORMED[c]) + len(WELL_FORMED_BUT_UNKNOWN[c]) for c in Channel}

    def received() -> dict[str, float]:
        return {c: running.sample("prometheus_notifications_total", {"channel": c}) for c in sent}

    wait_until(
        lambda: all(received()[c] >= n for c, n in sent.items()),
        timeout=DEADLINE,
        what=f"notifications received {sent}",
    )
    malformed = {
        c: running.sample("prometheus_notifications_malformed_total", {"channel": c})
        for c in Channel
    }
    assert malformed == {c: len(MALFORMED[c]) for c in Channel}
    assert running.thread.is_alive()
    status, report = running.healthz()
    assert (status, report["status"]) == (200, "ok")

    run_id = make_ready(engine, date(2026, 11, 24))
    wait_phase(engine, run_id)
    # The unknown run and region were dropped without a failed phase anywhere.
    assert running.sample("prometheus_phase_failures_total", {"phase": "DATA_READY"}) == 0
    assert get_run(engine, 999999) is None


# -- 4. connections killed under the reactor -----------------------------------------------


def test_a_killed_listener_reconnects_and_the_next_run_completes(
    reactors: ReactorThreads,
    engine: Engine,
    reactor_settings: Settings,
    admin: psycopg.Connection[Any],
) -> None:
    running = reactors.start(reactor_settings)
    running.wait_ready()
    old = wait_until(
        lambda: backend_pids(admin, running.listener_name), timeout=DEADLINE, what="listener"
    )

    terminate(admin, old)

    wait_until(
        lambda: (
            running.sample("prometheus_listener_reconnects_total") >= 1
            and backend_pids(admin, running.listener_name) - old
        ),
        timeout=DEADLINE,
        what="a new listener backend",
    )
    running.wait_ready()
    run_id = make_ready(engine, date(2026, 11, 24))
    wait_phase(engine, run_id)


def test_after_all_its_backends_are_killed_the_reconnect_sweep_finds_a_silent_run(
    reactors: ReactorThreads,
    engine: Engine,
    reactor_settings: Settings,
    admin: psycopg.Connection[Any],
) -> None:
    running = reactors.start(reactor_settings)
    running.wait_ready()
    names = (running.listener_name, running.pool_name)
    wait_until(
        lambda: len(backend_pids(admin, *names)) >= 2, timeout=DEADLINE, what="pool and listener"
    )
    # No notification for this run: only the sweep after the listener reconnects can
    # find it, and that sweep runs on a pool whose connections were all killed.
    run_id = make_ready(engine, date(2026, 11, 24), notify=False)

    terminate(admin, backend_pids(admin, *names))

    wait_phase(engine, run_id)
    assert running.sample("prometheus_listener_reconnects_total") >= 1
    # ...and a notified run still completes on the renewed pool.
    later = make_ready(engine, date(2026, 11, 25))
    wait_phase(engine, later)


def test_the_dispatcher_retries_once_on_a_pooled_connection_killed_under_it(
    reactors: ReactorThreads,
    engine: Engine,
    reactor_settings: Settings,
    admin: psycopg.Connection[Any],
) -> None:
    running = reactors.start(reactor_settings)
    running.wait_ready()
    pool = wait_until(
        lambda: backend_pids(admin, running.pool_name), timeout=DEADLINE, what="pool backends"
    )

    terminate(admin, pool)  # the listener lives on: no reconnect, no sweep
    wait_until(
        lambda: not backend_pids(admin, running.pool_name), timeout=DEADLINE, what="pool gone"
    )
    run_id = make_ready(engine, date(2026, 11, 24))

    wait_phase(engine, run_id)
    assert running.sample("prometheus_listener_reconnects_total") == 0


# -- 5. and 6. the link lost, through a proxy ----------------------------------------------


@pytest.mark.parametrize(
    ("cut", "mend", "notice_within"),
    [
        # The proxy refuses and closes: the listener sees the connection fail.
        (Proxy.stop, Proxy.start, DEADLINE),
        # The proxy keeps the link open and drops everything: only the listener's ping,
        # with its own deadline, notices (about 15 s: 5 s of silence, then 10 s).
        (Proxy.blackhole, Proxy.restore, 60.0),
    ],
    ids=["stopped", "blackholed"],
)
def test_after_the_link_returns_the_reconnect_sweep_finds_the_run_it_missed(
    proxy: Proxy,
    reactors: ReactorThreads,
    db_url: str,
    engine: Engine,
    reactor_settings: Settings,
    cut: Callable[[Proxy], None],
    mend: Callable[[Proxy], None],
    notice_within: float,
) -> None:
    running = reactors.start(replace(reactor_settings, database_url=proxy.url(db_url)))
    running.wait_ready()
    assert healthz_is(running, 200)

    cut(proxy)
    report = wait_until(lambda: healthz_is(running, 503), timeout=notice_within, what="degraded")
    assert report is not None
    assert report["status"] == "degraded"
    assert report["database_connected"] is False
    run_id = make_ready(engine, date(2026, 11, 24))  # straight to the server: nobody hears

    mend(proxy)

    wait_phase(engine, run_id)
    wait_until(lambda: healthz_is(running, 200), timeout=DEADLINE, what="healthy again")


def test_a_scrape_while_the_database_is_away_says_so_once_and_when_it_is_back(
    proxy: Proxy, reactors: ReactorThreads, db_url: str, reactor_settings: Settings
) -> None:
    """/metrics answers with the reactor's own metrics while its database figures cannot
    be read; the failure is one warning for the outage (not one per scrape, nor none),
    and the recovery one line more."""
    running = reactors.start(replace(reactor_settings, database_url=proxy.url(db_url)))
    running.wait_ready()
    assert "prometheus_runs" in running.scraped()

    with capture_logs() as logs:
        proxy.stop()
        for _ in range(3):
            scraped = running.scraped()
            assert "prometheus_runs" not in scraped
            assert "prometheus_sweeps_total" in scraped
        proxy.start()
        wait_until(lambda: "prometheus_runs" in running.scraped(), what="the figures back")
    said = [e for e in logs if e["event"].startswith("metrics.database_read")]
    assert [(e["event"], e["log_level"]) for e in said] == [
        ("metrics.database_read_failed", "warning"),
        ("metrics.database_read_recovered", "info"),
    ]
    assert said[0]["failures"] == 1 and said[1]["failures"] >= 3
    assert said[0]["error_type"] == "OperationalError"


# -- 7. retries -----------------------------------------------------------------------------


def test_a_failed_attempt_is_retried_after_its_backoff_without_a_notification(
    reactors: ReactorThreads, engine: Engine, reactor_settings: Settings
) -> None:
    running = reactors.start(replace(reactor_settings, retry_base=timedelta(seconds=0.5)))
    running.wait_ready()
    with engine.begin() as conn:
        run_id = ensure_run(conn, date(2026, 11, 24), "US", data_ready=False, actor="test").run_id
        reactor_tasks.plan(conn, run_id, "DATA_READY", failures=1)
    make_ready(engine, date(2026, 11, 24))

    wait_phase(engine, run_id)
    assert history(engine, run_id) == [
        ("transition", None, "WAITING_FOR_DATA"),
        ("transition", "WAITING_FOR_DATA", "DATA_READY"),
        ("attempt_failed", "DATA_READY", "DATA_READY"),
        ("transition", "DATA_READY", "SIGNALS_DONE"),
        ("transition", "SIGNALS_DONE", "UNIVERSES_DONE"),
        ("transition", "UNIVERSES_DONE", "COMPLETED"),
    ]


# -- 8. coalescing --------------------------------------------------------------------------

LOCK_KEY = 4_242_001


def test_a_burst_of_notifications_for_a_run_in_progress_is_coalesced(
    reactors: ReactorThreads,
    engine: Engine,
    reactor_settings: Settings,
    admin: psycopg.Connection[Any],
) -> None:
    running = reactors.start(reactor_settings)
    running.wait_ready()
    with engine.begin() as conn:
        run_id = ensure_run(conn, date(2026, 11, 24), "US", data_ready=False, actor="test").run_id
        reactor_tasks.plan(conn, run_id, "DATA_READY", lock_key=LOCK_KEY)
    admin.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    make_ready(engine, date(2026, 11, 24))
    wait_until(
        lambda: (
            admin.execute(
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND NOT granted AND objid = %s"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (LOCK_KEY,),
            ).fetchone()
            == (1,)
        ),
        timeout=DEADLINE,
        what="the signals task waiting on the test's lock",
    )
    before = running.sample("prometheus_notifications_total", {"channel": Channel.ENGINE_RUNS})

    with admin.transaction():  # distinct payloads: NOTIFY folds identical ones itself
        for n in range(200):
            payload = json.dumps({"run_id": run_id, "phase": "DATA_READY", "n": n})
            notify(admin, Channel.ENGINE_RUNS, payload)
    wait_until(
        lambda: (
            running.sample("prometheus_notifications_total", {"channel": Channel.ENGINE_RUNS})
            >= before + 200
        ),
        timeout=DEADLINE,
        what="200 notifications received",
    )
    admin.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    wait_phase(engine, run_id)
    assert transitions(engine, run_id) == TRANSITIONS
    transitions_made = sum(
        running.sample("prometheus_transitions_total", {"from_phase": f, "to_phase": t})
        for f, t in TRANSITIONS[2:]
        if f is not None
    )
    assert transitions_made == 3


# -- 9. /metrics and /healthz ----------------------------------------------------------------


def test_metrics_and_healthz_report_what_happened(
    reactors: ReactorThreads, engine: Engine, reactor_settings: Settings
) -> None:
    running = reactors.start(reactor_settings)
    running.wait_ready()
    done = make_ready(engine, date(2026, 11, 24))
    wait_phase(engine, done)
    with engine.begin() as conn:  # one run left waiting, to see a second phase
        ensure_run(conn, date(2026, 11, 25), "US", data_ready=False, actor="test")

    samples = running.scraped()

    runs = {labels["phase"]: value for labels, value in samples["prometheus_runs"]}
    assert set(runs) <= set(Phase)
    assert {phase: n for phase, n in runs.items() if n} == {"COMPLETED": 1, "WAITING_FOR_DATA": 1}
    made = {
        (labels["from_phase"], labels["to_phase"]): value
        for labels, value in samples["prometheus_transitions_total"]
    }
    assert made == {
        ("DATA_READY", "SIGNALS_DONE"): 1.0,
        ("SIGNALS_DONE", "UNIVERSES_DONE"): 1.0,
        ("UNIVERSES_DONE", "COMPLETED"): 1.0,
    }
    durations = {
        labels["phase"]: value
        for labels, value in samples["prometheus_phase_duration_seconds_count"]
    }
    assert durations == {"DATA_READY": 1.0, "SIGNALS_DONE": 1.0, "UNIVERSES_DONE": 1.0}
    assert samples["prometheus_notification_to_start_seconds_count"] == [({}, 1.0)]
    assert samples["prometheus_sweeps_total"][0][1] >= 1
    assert samples["prometheus_listener_reconnects_total"] == [({}, 0.0)]

    status, report = running.healthz()
    assert status == 200
    assert set(report) == {
        "status",
        "reactor_id",
        "last_tick",
        "last_notification",
        "runs_in_progress",
        "database_connected",
        "wedged_workers",
        "failing_services",
        "listener_hears",
        "listener_problem",
        "last_listener_proof",
        "polling",
    }
    assert report["status"] == "ok"
    assert report["reactor_id"] == running.reactor_id
    assert report["database_connected"] is True
    assert report["runs_in_progress"] == 0
    assert (report["wedged_workers"], report["failing_services"]) == (0, [])
    assert (report["listener_hears"], report["listener_problem"], report["polling"]) == (
        True,
        None,
        False,
    )
    assert datetime.fromisoformat(report["last_listener_proof"]).tzinfo is not None
    assert datetime.fromisoformat(report["last_tick"]).tzinfo is not None
    assert datetime.fromisoformat(report["last_notification"]).tzinfo is not None


# -- 10. calendar runs -----------------------------------------------------------------------


def test_the_reactor_creates_waiting_runs_for_recently_closed_sessions(
    reactors: ReactorThreads, engine: Engine, reactor_settings: Settings
) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO region_datasets VALUES ('US', 'prices')"))
        now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    calendar = TradingCalendar(reactor_settings.region_exchanges)
    expected = {s.date for s in calendar.closed_sessions("US", now, CALENDAR_LOOKBACK)}
    assert expected, "the lookback should hold at least one closed session"

    reactors.start(reactor_settings)

    def us_runs() -> set[date]:
        return {r.as_of_date for r in list_runs(engine, region="US")}

    wait_until(lambda: us_runs() == expected, timeout=DEADLINE, what=f"US runs {expected}")
    assert all(r.phase is Phase.WAITING_FOR_DATA for r in list_runs(engine, region="US"))
    window = [
        (now - CALENDAR_LOOKBACK).date() + timedelta(days=d)
        for d in range(CALENDAR_LOOKBACK.days + 2)
    ]
    weekend = {d for d in window if d.weekday() >= 5}
    assert weekend, "the lookback window should hold a weekend"
    assert not us_runs() & weekend
    assert all(calendar.is_session("US", d) for d in us_runs())
    today = calendar.session("US", now.date())  # none on 2026-11-26, Thanksgiving
    if today is None or today.close > now:
        assert now.date() not in us_runs()


def test_calendar_rounds_count_the_runs_they_create(
    reactors: ReactorThreads, engine: Engine, reactor_settings: Settings
) -> None:
    """calendar_runs.created says how many runs a round made, and a round that made none
    says nothing (the statement's row count, always 1, said runs=1 every round)."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO region_datasets VALUES ('US', 'prices'), ('EU', 'prices')"))
        now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    calendar = TradingCalendar(reactor_settings.region_exchanges)
    expected = {
        (s.date, region)
        for region in ("US", "EU")
        for s in calendar.closed_sessions(region, now, CALENDAR_LOOKBACK)
    }
    assert len(expected) > 1, "the lookback should hold closed sessions in both regions"

    with capture_logs() as logs:
        running = reactors.start(reactor_settings)
        service = running.reactor.calendar_runs
        wait_until(lambda: service.rounds >= 1, timeout=DEADLINE, what="a first calendar round")
        assert {(r.as_of_date, r.region) for r in list_runs(engine)} == expected
        service.wake()
        wait_until(lambda: service.rounds >= 2, timeout=DEADLINE, what="a second calendar round")
    created = [e["runs"] for e in logs if e["event"] == "calendar_runs.created"]
    assert created == [len(expected)]
    assert (service.failures, len(list_runs(engine))) == (0, len(expected))


def test_ensure_calendar_runs_returns_how_many_it_created(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO region_datasets VALUES ('US', 'prices')"))
    calendar = TradingCalendar()
    at = datetime(2026, 11, 24, 22, tzinfo=UTC)  # Tuesday, after the close
    rounds = [ensure_calendar_runs(engine, calendar, actor="test", now=at) for _ in range(2)]
    assert rounds == [3, 0]  # Friday the 20th, Monday the 23rd, Tuesday the 24th
    assert {r.as_of_date for r in list_runs(engine)} == {date(2026, 11, d) for d in (20, 23, 24)}
