"""The demo, small: it must reach COMPLETED runs by itself and exit 0."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from prometheus.cli.app import run
from prometheus.config import libpq_url, redact_urls
from prometheus.db.databases import create_database, drop_database, with_database


@pytest.fixture
def demo_name(server_url: str) -> Iterator[str]:
    name = f"prometheus_demo_{uuid.uuid4().hex[:10]}"
    yield name
    drop_database(server_url, name)


def _database_exists(server_url: str, name: str) -> bool:
    with psycopg.connect(libpq_url(server_url)) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return found is not None


def test_the_demo_completes_every_run_and_cleans_up(
    server_url: str, demo_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--database-url",
        server_url,
        "demo",
        "--days",
        "2",
        "--instruments",
        "20",
        "--pace",
        "0",
        "--name",
        demo_name,
    ]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "4 of 4 runs COMPLETED" in out  # 2 days x 2 regions
    assert "top of the book" in out
    assert not _database_exists(server_url, demo_name)


def demo_args(server_url: str, name: str, *flags: str, days: int = 5) -> list[str]:
    small = ["--days", str(days), "--instruments", "20", "--pace", "0", "--name", name]
    return ["--database-url", server_url, "demo", *small, *flags]


def test_a_kept_demo_database_passes_check(
    server_url: str, demo_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Five days cover the sessions the reactor's calendar makes runs for, and the demo's
    reactor leaves no heartbeat to be missed: `check` on the kept database is green."""
    assert run(demo_args(server_url, demo_name, "--keep")) == 0
    out = capsys.readouterr().out
    assert out.startswith("10 of 10 runs COMPLETED in ")
    kept = with_database(server_url, demo_name)
    assert f"  export PROMETHEUS_DATABASE_URL='{redact_urls(kept)}'" in out.splitlines()
    with psycopg.connect(libpq_url(kept)) as conn:
        rows = conn.execute("SELECT region, phase FROM engine_runs").fetchall()
    assert sorted(region for region, phase in rows) == ["EU"] * 5 + ["US"] * 5
    assert {phase for _, phase in rows} == {"COMPLETED"}
    assert run(["--database-url", kept, "check"]) == 0
    assert capsys.readouterr().out.startswith("OK: 10 run(s) (10 COMPLETED)")


def test_the_demo_refuses_to_drop_a_kept_database_unless_fresh(
    server_url: str, demo_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = create_database(server_url, demo_name)  # as an earlier `demo --keep` leaves it
    with psycopg.connect(libpq_url(kept), autocommit=True) as conn:
        conn.execute("CREATE TABLE my_notes (note text)")

    assert run(demo_args(server_url, demo_name, days=1)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == (
        f"prometheus: error: database {demo_name} exists (kept by an earlier "
        "`prometheus demo --keep`): pass --fresh to drop and recreate it, or --name "
        "prometheus_demo_2 for another"
    )
    with psycopg.connect(libpq_url(kept)) as conn:  # untouched
        assert conn.execute("SELECT count(*) FROM my_notes").fetchone() == (0,)

    assert run(demo_args(server_url, demo_name, "--fresh", days=1)) == 0
    assert "2 of 2 runs COMPLETED" in capsys.readouterr().out
    assert not _database_exists(server_url, demo_name)


def test_the_demo_refuses_a_database_that_is_not_a_demos(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It drops and recreates its database: pointed at a real one by mistake, it must not."""
    assert run(["--database-url", server_url, "demo", "--name", "postgres"]) == 2
    assert "must start with 'prometheus_demo'" in capsys.readouterr().err
    assert _database_exists(server_url, "postgres")
