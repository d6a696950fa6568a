"""The demo, small: it must reach COMPLETED runs by itself and exit 0."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from prometheus.cli.app import run
from prometheus.config import libpq_url
from prometheus.db.databases import drop_database, with_database


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


def test_the_demo_with_keep_leaves_its_completed_runs(
    server_url: str, demo_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--database-url",
        server_url,
        "demo",
        "--days",
        "1",
        "--instruments",
        "20",
        "--pace",
        "0",
        "--keep",
        "--name",
        demo_name,
    ]
    assert run(argv) == 0
    assert "export PROMETHEUS_DATABASE_URL=" in capsys.readouterr().out
    with psycopg.connect(libpq_url(with_database(server_url, demo_name))) as conn:
        rows = conn.execute("SELECT region, phase FROM engine_runs").fetchall()
    assert sorted(region for region, phase in rows if phase == "COMPLETED") == ["EU", "US"]
    # The reactor also made runs for earlier closed sessions (the calendar): they wait.
    assert {phase for _, phase in rows} <= {"COMPLETED", "WAITING_FOR_DATA"}


def test_the_demo_refuses_a_database_that_is_not_a_demos(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It drops and recreates its database: pointed at a real one by mistake, it must not."""
    assert run(["--database-url", server_url, "demo", "--name", "postgres"]) == 2
    assert "must start with 'prometheus_demo'" in capsys.readouterr().err
    assert _database_exists(server_url, "postgres")
