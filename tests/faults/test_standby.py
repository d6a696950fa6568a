"""A standby is named as one: a CLI command that must write, run against a standby, is one
line saying so and what to set; a multi-host URL with ``target_session_attrs=read-write``
finds the primary behind it; a reactor whose listener reaches a standby says so once,
is degraded, and polls."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from structlog.testing import capture_logs

from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import create_database, upgrade_database, with_database
from tests.support import reactor_tasks
from tests.support.cli_runner import invoke
from tests.support.clusters import ClusterFactory
from tests.support.inprocess import ReactorThreads
from tests.support.runs import make_ready, wait_phase
from tests.support.waiting import wait_until

TARGET = ["--as-of", "2026-11-24", "--region", "US"]


@pytest.mark.parametrize("command", [["runs", "ensure", *TARGET], ["db", "upgrade"]])
def test_a_write_on_a_standby_is_one_line_naming_it_and_what_to_set(
    clusters: ClusterFactory, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    primary = clusters.primary()
    upgrade_database(create_database(primary.url(), "prometheus"))
    standby = clusters.replica(primary)
    primary.wait_replayed(standby)

    result = invoke(capsys, with_database(standby.url(), "prometheus"), *command)
    assert result.code == 1, result
    assert result.out == ""
    assert result.err_lines == [
        f"prometheus: error: the server at postgresql://postgres@127.0.0.1:{standby.port}"
        "/prometheus is a standby (in recovery) or read-only: point PROMETHEUS_DATABASE_URL"
        " at the primary, or list every server and add target_session_attrs=read-write"
    ]

    both = (
        f"postgresql://postgres@127.0.0.1:{standby.port},127.0.0.1:{primary.port}/prometheus"
        "?target_session_attrs=read-write"
    )
    assert invoke(capsys, both, *command).code == 0


def test_a_reactor_listening_on_a_standby_says_so_once_and_polls(
    clusters: ClusterFactory,
    reactors: ReactorThreads,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The work connections reach the primary, the listener a standby (a wrong
    PROMETHEUS_LISTEN_URL): a standby cannot LISTEN, which the listener says in one line,
    and the reactor polls, so runs still complete."""
    primary = clusters.primary()
    database = create_database(primary.url(), "prometheus")
    upgrade_database(database)
    standby = clusters.replica(primary)
    primary.wait_replayed(standby)
    engine = make_engine(database, application_name="tests", pool_size=2)
    try:
        with capture_logs() as logs:
            running = reactors.start(
                Settings(
                    database_url=database,
                    listen_url=with_database(standby.url(), "prometheus"),
                    phase_tasks=reactor_tasks.MODULE,
                    sweep_interval=timedelta(hours=1),
                    heartbeat_interval=timedelta(seconds=1),
                    metrics_port=0,
                )
            )
            report = wait_until(
                lambda: (
                    running.healthz()[1]["listener_problem"] is not None and running.healthz()[1]
                ),
                what="the listener's problem on /healthz",
            )
            run_id = make_ready(engine, date(2026, 11, 24))
            wait_phase(engine, run_id)
            wait_until(  # it goes on trying the standby: still one line
                lambda: running.sample("prometheus_listener_reconnects_total") >= 3,
                what="three connects to the standby",
            )
        deaf = [e for e in logs if e["event"] == "listener.deaf"]
        checked = invoke(capsys, database, "check")
    finally:
        engine.dispose()
    assert running.healthz()[0] == 503
    assert report is not False and report["polling"] is True
    # The reason, without the server: it goes to the heartbeat, and from there to pages
    # anyone may read; the log line, the reactor operator's, names the server.
    assert report["listener_problem"] == "the server it listens on is a standby (in recovery)"
    assert len(deaf) == 1, deaf
    assert deaf[0]["listen"] == f"postgresql://postgres@127.0.0.1:{standby.port}/prometheus"
    assert deaf[0]["hint"].startswith("a standby cannot LISTEN: point PROMETHEUS_LISTEN_URL")
    assert checked.code == 1
    assert any(
        line.startswith("LISTENER_DEAF: ") and "is a standby (in recovery)" in line
        for line in checked.out.splitlines()
    )
