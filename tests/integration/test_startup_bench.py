"""Start-up against a real database: ``prometheus bench startup`` end to end (once each;
the real one starts each command ten times), and what ``runs list`` imports. Speed itself
is not asserted (the README has the numbers)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from prometheus.config import subprocess_environment
from tests.support.cli_runner import invoke


def test_bench_startup_times_help_version_and_runs_list(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, server_url, "bench", "startup", "--repeat", "1", "--json")
    assert result.code == 0, result.err
    measured = json.loads(result.out)
    assert measured["repeat"] == 1
    for case in ("help", "version", "runs_list"):
        low, mid, high = (measured[f"{case}_{k}_ms"] for k in ("min", "p50", "max"))
        assert 0 < low <= mid <= high, (case, measured)


def test_runs_list_imports_only_what_it_uses(db_url: str) -> None:
    """Against a real database: the driver and SQLAlchemy, not the calendar library, the
    metrics client, rich, or structlog (nothing is logged, so nothing loads it)."""
    program = (
        "import contextlib, io, json, sys\n"
        "from prometheus.cli.app import run\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = run(['--database-url', {db_url!r}, 'runs', 'list'])\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "    ('exchange_calendars', 'pandas', 'prometheus_client', 'rich', 'structlog',\n"
        "     'sqlalchemy', 'psycopg'))]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=subprocess_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 0, done.stderr
    assert {m.split(".")[0] for m in loaded} == {"sqlalchemy", "psycopg"}
