"""Every libpq URL form, for real: the CLI, the seed scripts, the reactor (pool and
listener) and the test helpers reach the same database through each; a URL the project
cannot use is one line naming the wrong part, password masked."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import psycopg
import pytest
from sqlalchemy import Engine

from prometheus.config import Settings, libpq_url
from prometheus.conninfo import ConnInfo
from prometheus.db.databases import with_database
from prometheus.orchestration import engine_daemon
from prometheus.scripts import show_engine_runs
from tests.support import reactor_tasks
from tests.support.cli_runner import invoke, invoke_main
from tests.support.clusters import free_port
from tests.support.inprocess import ReactorThreads
from tests.support.runs import make_ready, wait_phase

DAY = date(2026, 11, 24)
FORMS = [
    "multi-host URI, first host down",
    "repeated ?host= (SQLAlchemy's form)",
    "keyword/value, multi-host",
    "unix socket",
    "postgres:// scheme",
]


@pytest.fixture(params=FORMS)
def form_url(request: pytest.FixtureRequest, db_url: str) -> str:
    """The test database, named in one of libpq's forms. "Down" is a port nobody
    listens on: libpq must go on to the next host."""
    info = ConnInfo.parse(db_url, name="the test database URL")
    host, port = info.hosts[0], info.ports[0]
    user, db = info.params.get("user", "postgres"), info.params["dbname"]
    dead = free_port()
    with psycopg.connect(libpq_url(db_url)) as conn:
        row = conn.execute("SHOW unix_socket_directories").fetchone()
        assert row is not None
        socket_dir = str(row[0]).split(",")[0].strip()
    urls = {
        "multi-host URI, first host down": (
            f"postgresql://{user}@127.0.0.1:{dead},{host}:{port}/{db}"
            "?target_session_attrs=read-write"
        ),
        "repeated ?host= (SQLAlchemy's form)": (
            f"postgresql://{user}@/{db}?host=127.0.0.1:{dead}&host={host}:{port}"
        ),
        "keyword/value, multi-host": (
            f"host=127.0.0.1,{host} port={dead},{port} dbname={db} user={user}"
            " target_session_attrs=any"
        ),
        "unix socket": f"postgresql://{user}@/{db}?host={socket_dir}&port={port}",
        "postgres:// scheme": f"postgres://{user}@{host}:{port}/{db}",
    }
    return urls[request.param]


def test_the_cli_and_the_scripts_work_with_every_form(
    form_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = invoke(capsys, form_url, "runs", "ensure", "--as-of", str(DAY), "--region", "US")
    assert made.code == 0, made.err
    listed = invoke(capsys, form_url, "runs", "list", "--format", "json")
    assert listed.code == 0, listed.err
    assert [(r["as_of_date"], r["region"]) for r in json.loads(listed.out)] == [(str(DAY), "US")]
    shown = invoke_main(capsys, show_engine_runs.main, ["--database-url", form_url])
    assert shown.code == 0, shown.err
    assert f"{DAY},US" in shown.out


def test_the_reactor_listens_and_works_with_every_form(
    form_url: str, engine: Engine, settings: Settings, reactors: ReactorThreads
) -> None:
    running = reactors.start(
        replace(
            settings,
            database_url=form_url,
            phase_tasks=reactor_tasks.MODULE,
            sweep_interval=timedelta(hours=1),
        )
    )
    running.wait_ready()
    run_id = make_ready(engine, DAY)  # after the start sweep: only the notification moves it
    wait_phase(engine, run_id)


def test_another_database_on_the_same_servers_keeps_the_form(form_url: str) -> None:
    other = with_database(form_url, "postgres")
    assert ("://" in other) == ("://" in form_url)
    with psycopg.connect(libpq_url(other)) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row == ("postgres",)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://alice:hunter2@db.example:54x2/prod", "port '54x2' is not a number"),
        ("postgresql://alice:hunter2@h1,h2,h3/prod?port=1,2", "2 ports for 3 host(s)"),
        ("postgresql://alice:hunter2@db/prod?target_session_attrs=primary-only", "target_"),
        ("postgresql://alice:hunter2@db/prod?sslmod=require", 'query parameter: "sslmod"'),
        ("mysql://alice:hunter2@db/prod", "must name PostgreSQL"),
        # A password with a space: libpq reads "hunter2" and quotes the next word.
        ("host=db password=hunter2 tiger7 dbname=prod", 'missing "=" after "***"'),
    ],
)
def test_a_bad_database_url_exits_2_naming_the_wrong_part_without_the_password(
    url: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, url, "runs", "list")
    assert result.code == 2, result
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith(
        "prometheus: error: the database URL (PROMETHEUS_DATABASE_URL or --database-url)"
    )
    assert says in result.err
    assert "hunter2" not in result.err and "tiger7" not in result.err
    assert "Traceback" not in result.err


def test_a_bad_listen_url_stops_the_reactor_module_with_one_line(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMETHEUS_LISTEN_URL", "postgresql://u:hunter2@primary:x/db")
    code = engine_daemon.main(["--database-url", db_url])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "engine_daemon: error: the listen URL (PROMETHEUS_LISTEN_URL) is not valid:"
        " port 'x' is not a number 1-65535"
    ]
