"""The embedded server's lifecycle is explicit: `db status` says whether it runs and where
(without starting it), `db stop` stops it, and a command that needs it says so on stderr
in one plain line. A real pgserver under a temporary PROMETHEUS_HOME (no database URL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prometheus.cli.app import run
from prometheus.db.embedded import embedded_server, stop_embedded_server
from tests.support.cli_runner import Result, invoke_main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A PROMETHEUS_HOME of the test's own, and no database URL: the embedded server."""
    tmp_path.chmod(0o755)  # pgserver runs the server as its own user when we are root
    monkeypatch.setenv("PROMETHEUS_HOME", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_DATABASE_URL", raising=False)
    yield tmp_path
    stop_embedded_server(tmp_path / "pgdata")


def prometheus(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    return invoke_main(capsys, run, list(args))


def alive(pid: int) -> bool:
    """A process that runs (a zombie, left for a reaper that may never come, has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_status_stop_and_the_plain_line_that_names_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pgdata = home / "pgdata"
    status = prometheus(capsys, "db", "status")
    assert (status.code, status.out) == (
        0,
        f"embedded PostgreSQL: not created yet (it will live in {pgdata})\n",
    )
    assert not embedded_server(pgdata).initialized  # a status starts nothing

    upgrade = prometheus(capsys, "db", "upgrade")
    assert upgrade.code == 0, upgrade.err
    assert upgrade.err.splitlines()[0] == (
        f"prometheus: using the embedded PostgreSQL in {pgdata} (starting it, a few seconds; "
        "PROMETHEUS_DATABASE_URL names another server)"
    )
    assert "warning" not in upgrade.err

    server = embedded_server(pgdata)
    assert server.pid is not None and alive(server.pid)
    status = prometheus(capsys, "db", "status")
    assert status.code == 0, status.err
    assert status.out.splitlines()[:3] == [
        f"embedded PostgreSQL: running (pid {server.pid}), data in {pgdata}",
        f"  at {server.url}",
        "  `prometheus db stop` stops it",
    ]
    assert "schema/0001_engine_runs.sql" in status.out and "pending" not in status.out

    stop = prometheus(capsys, "db", "stop")
    assert (stop.code, stop.out) == (
        0,
        f"embedded PostgreSQL in {pgdata} stopped (pid {server.pid})\n",
    )
    assert not alive(server.pid)
    status = prometheus(capsys, "db", "status", "--format", "json")
    assert (status.code, status.out) == (0, "")
    assert status.err.startswith(f"embedded PostgreSQL: not running, data in {pgdata}\n")
    again = prometheus(capsys, "db", "stop", "--format", "json")
    assert again.out == f'{{"pgdata": "{pgdata}", "stopped": false, "pid": null}}\n'
