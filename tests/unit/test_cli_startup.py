"""The command line starts fast because it imports only what a command uses (issue 10).

Each check runs in a fresh interpreter: this test process has imported everything
already, so its own ``sys.modules`` says nothing. Speed itself is measured by
``prometheus bench startup`` (numbers in the README), not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from prometheus.config import subprocess_environment

#: Never imported by building the CLI, its help or its version: each costs from 50 ms
#: (rich) to a second (exchange_calendars with pandas). A command imports what it uses
#: inside its own function.
HEAVY = (
    "exchange_calendars",
    "pandas",
    "rich",
    "rich.live",
    "prometheus_client",
    "sqlalchemy",
    "psycopg",
    "structlog",
    "pgserver",
    "starlette",
    "uvicorn",
    "jinja2",
    "airflow",
    "dagster",
)


def imported_after(*statements: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``statements``."""
    program = "\n".join(
        [
            "import contextlib, io, json, sys",
            *statements,
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=subprocess_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def quietly(argv: list[str]) -> str:
    """A statement that runs the CLI with ``argv``, its output swallowed."""
    return (
        "from prometheus.cli.app import run\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        f"    run({argv!r})"
    )


def test_importing_the_cli_and_building_its_commands_loads_no_heavy_library() -> None:
    assert imported_after("import typer", "from prometheus.cli.app import app") == []
    built = imported_after(
        "import typer", "from prometheus.cli.app import app", "typer.main.get_command(app)"
    )
    assert built == []


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["runs", "list", "--help"], ["demo", "--help"], ["bench"]],
    ids=" ".join,
)
def test_help_and_version_load_no_heavy_library(argv: list[str]) -> None:
    assert imported_after(quietly(argv)) == []
