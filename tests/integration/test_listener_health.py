"""A reactor is never silently deaf: its listener proves, end to end and periodically,
that notifications reach it; when one does not, /healthz is degraded, one line says why,
the reactor polls (no run waits for the sweep), and it recovers by itself. The server's
NOTIFY queue is watched too: a gauge, and a `check` problem above a limit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text
from structlog.testing import capture_logs

from prometheus.calendar import TradingCalendar
from prometheus.checks import CheckPolicy, NotifyQueueFull, ProblemKind, find_problems
from prometheus.config import Settings, libpq_url
from prometheus.orchestration.listener import NOTIFY_QUEUE_PROBLEM
from prometheus.orchestration.notifications import Channel
from prometheus.pipeline.state import list_runs
from tests.support import reactor_tasks
from tests.support.cli_runner import invoke
from tests.support.inprocess import ReactorThreads, RunningReactor
from tests.support.proxy import Proxy
from tests.support.runs import make_ready, wait_phase
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)
HOUR = timedelta(hours=1)


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    """Sweeps and proofs only when the test asks: what moves a run is polling."""
    return replace(
        settings,
        phase_tasks=reactor_tasks.MODULE,
        sweep_interval=HOUR,
        listener_check_interval=HOUR,
        metrics_port=0,
    )


def health(running: RunningReactor) -> dict[str, Any]:
    status, report = running.healthz()
    return {"http": status, **report}


def test_a_listener_whose_proof_is_lost_says_so_once_polls_and_recovers(
    engine: Engine, quiet: Settings, reactors: ReactorThreads
) -> None:
    running = reactors.start(quiet)
    running.wait_ready()
    assert health(running)["http"] == 200
    listener = running.reactor.listener

    with capture_logs() as logs:
        # A proof whose notification is lost on the way, as through a transaction pooler:
        # expected, never sent.
        assert listener.expect_proof() is not None
        deaf = wait_until(
            lambda: (report := health(running))["http"] == 503 and report,
            timeout=15,
            what="/healthz degraded once the proof's deadline passed",
        )
        assert deaf["listener_hears"] is False and deaf["polling"] is True
        assert "did not arrive within 5s" in deaf["listener_problem"]

        run_id = make_ready(engine, DAY, notify=False)  # nothing wakes a worker but a poll
        wait_phase(engine, run_id)
        assert running.sample("prometheus_polls_total") > 0

        proven_before = listener.last_proof
        running.reactor.listener_check.wake()  # the periodic check, now
        wait_until(lambda: health(running)["http"] == 200, what="/healthz ok again")
    assert listener.last_proof is not None and listener.last_proof != proven_before
    # One warning for the whole episode (listener.proven follows at info level, which
    # another test's log configuration may filter out).
    assert [e["event"] for e in logs if e["event"] == "listener.deaf"] == ["listener.deaf"]


def test_while_the_listener_is_down_the_reactor_polls_with_the_database_back(
    engine: Engine, db_url: str, quiet: Settings, reactors: ReactorThreads, proxy: Proxy
) -> None:
    """The database is there but the listener is not (its link is down, or it waits out a
    reconnect backoff of up to 15 s): a run made ready now is found by the poll service
    within about a second, not by the next sweep."""
    proxy.stop()
    running = reactors.start(replace(quiet, listen_url=proxy.url(db_url)))
    wait_until(
        lambda: running.sample("prometheus_listener_reconnects_total") >= 1,
        what="the listener failing to connect",
    )
    run_id = make_ready(engine, DAY)  # notified, to nobody
    wait_phase(engine, run_id, timeout=10)
    assert not running.reactor.listener.connected.is_set()
    assert running.sample("prometheus_polls_total") > 0
    assert health(running)["polling"] is True


FILLER = "tests_queue_filler"


@pytest.fixture
def held_queue(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A session that LISTENs (on a filler channel and on ours) and then sits in a
    transaction: it reads nothing, so every notification from now on stays in the server's
    queue until it ends."""
    with psycopg.connect(libpq_url(db_url), application_name="tests-stuck-listener") as stuck:
        for channel in (FILLER, *Channel):
            stuck.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        stuck.commit()
        stuck.execute("SELECT 1")  # and now idle in transaction
        yield stuck
        stuck.rollback()


def test_the_notify_queue_usage_is_a_gauge_and_a_check_problem_above_its_limit(
    engine: Engine,
    db_url: str,
    quiet: Settings,
    reactors: ReactorThreads,
    held_queue: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as notifier:
        for n in range(40):  # 40 KiB: several of the queue's 8 KiB pages
            notifier.execute("SELECT pg_notify('tests_queue_filler', %s)", (f"{n:04d}" * 256,))
    calendar = TradingCalendar(quiet.region_exchanges)

    strict = find_problems(engine, CheckPolicy(max_notify_queue=0.0), calendar=calendar)
    full = [p for p in strict.problems if isinstance(p, NotifyQueueFull)]
    assert len(full) == 1 and full[0].usage > 0
    assert "NOTIFY queue is" in full[0].message and "(limit 0%)" in full[0].message
    relaxed = find_problems(engine, CheckPolicy(), calendar=calendar)  # limit 50%
    assert relaxed.problems_by_kind[ProblemKind.NOTIFY_QUEUE] == 0
    assert relaxed.notify_queue_usage > 0

    checked = invoke(capsys, db_url, "check", "--max-notify-queue", "0")
    assert checked.code == 1
    assert [line for line in checked.out.splitlines() if line.startswith("NOTIFY_QUEUE: ")]
    assert invoke(capsys, db_url, "check", "--max-notify-queue", "1").code == 2

    running = reactors.start(quiet)
    running.wait_ready()
    usage = running.scraped()["prometheus_notification_queue_usage"]
    assert len(usage) == 1 and usage[0][1] > 0


def queue_usage(conn: psycopg.Connection[Any]) -> float:
    row = conn.execute("SELECT pg_notification_queue_usage()").fetchone()
    assert row is not None
    return float(row[0])


def fill(conn: psycopg.Connection[Any], *, past: float) -> None:
    """Notify the filler channel, a page of the queue at a time, until its usage is past
    ``past`` (a page is about a millionth of the server's 8 GB queue)."""
    for n in range(1000):
        if queue_usage(conn) > past:
            return
        conn.execute("SELECT pg_notify(%s, %s)", (FILLER, f"{n:05d}" * 1500))
    raise AssertionError(f"the queue stayed at {queue_usage(conn)}, not past {past}")


def test_past_the_queue_limit_writers_succeed_and_runs_complete_by_polling(
    engine: Engine,
    db_url: str,
    quiet: Settings,
    reactors: ReactorThreads,
    held_queue: psycopg.Connection[Any],
) -> None:
    """A stuck listener holds the server's NOTIFY queue, filled just past the limit
    (lowered for the database, as an operator would): every notification of ours is
    skipped, so none can fail its writer when the queue is full. An ingestion batch's
    commit and the reactor's phase changes succeed; the reactor's own proof is skipped
    too, so its listener says why it cannot hear and it polls: the run completes with the
    sweep an hour away. The stuck session, once it reads, finds nothing of ours."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
        fill(admin, past=queue_usage(admin))  # a page in use, whatever was there before
        limit = queue_usage(admin)
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET prometheus.notify_queue_limit = {}").format(
                sql.Identifier(admin.info.dbname), sql.Literal(repr(limit))
            )
        )
        fill(admin, past=limit)
        admin.execute("INSERT INTO region_datasets VALUES ('US', 'prices')")
    engine.dispose()  # new sessions, with the database's new setting

    running = reactors.start(quiet)
    report = wait_until(
        lambda: (report := health(running))["listener_problem"] == NOTIFY_QUEUE_PROBLEM and report,
        what="the listener deaf for the skipped proof",
    )
    assert (report["http"], report["polling"]) == (503, True)

    with engine.begin() as conn:  # an ingestion job's last dataset: its run is made ready
        conn.execute(
            text(
                "INSERT INTO ingestion_batches (dataset, as_of_date, region, status, completed_at)"
                " VALUES ('prices', :day, 'US', 'COMPLETE', now())"
            ),
            {"day": DAY},
        )
    (run,) = [r for r in list_runs(engine, region="US") if r.as_of_date == DAY]
    wait_phase(engine, run.run_id)
    assert running.sample("prometheus_polls_total") > 0

    held_queue.rollback()  # it reads at last: everything queued while it held the queue
    with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
        admin.execute("SELECT pg_notify(%s, 'end')", (FILLER,))
    received = []
    for notify in held_queue.notifies(timeout=30):
        received.append(notify.channel)
        if (notify.channel, notify.payload) == (FILLER, "end"):
            break
    assert received[-1] == FILLER and set(received) == {FILLER}  # nothing of ours


def test_the_notify_queue_limit_is_a_setting_and_a_typo_means_the_default(
    db_url: str, held_queue: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        fill(conn, past=queue_usage(conn))

        def sent(limit: str) -> bool:
            conn.execute("SELECT set_config('prometheus.notify_queue_limit', %s, false)", (limit,))
            row = conn.execute("SELECT prometheus_notify('tests_elsewhere', 'x')").fetchone()
            assert row is not None
            return bool(row[0])

        assert sent("0") is False  # past it
        assert sent(" 0.9 ") is True
        assert sent("") is True  # unset: the default, 0.5
        assert sent("1e-9") is False
        assert sent("ten percent") is True  # not a number: the default, not an error


def test_every_notification_of_ours_goes_through_prometheus_notify(engine: Engine) -> None:
    """Whatever notifies (a trigger, a query) must respect the queue limit: pg_notify is
    called in one function only, and no named query calls it."""
    with engine.connect() as conn:
        callers = conn.execute(
            text(
                "SELECT p.proname FROM pg_proc p"
                " WHERE p.pronamespace = current_schema()::regnamespace"
                " AND p.prosrc ILIKE '%pg_notify%'"
            )
        ).scalars()
        assert set(callers) == {"prometheus_notify"}
    queries = Path(__file__).resolve().parents[2] / "sql" / "queries"
    assert [f.name for f in queries.glob("*.sql") if "pg_notify" in f.read_text().lower()] == []
