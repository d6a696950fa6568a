"""Help text and safe defaults of the command line (issue 10), without a database."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
import typer

from prometheus.cli.app import app, run
from prometheus.orchestration.engine_daemon import Reactor, serve
from tests.support.cli_runner import invoke_main


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path in the tree (groups have .commands)."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


ALL = list(commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "prometheus")
def test_help_names_values_not_python_types(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    """No `<bool>` after a flag, no `<str>`/`<int>` for an option's value: a flag is just
    its name, a value has a metavar that says what to type (YYYY-MM-DD, REGION, N, ...)."""
    result = invoke_main(capsys, run, [*path, "--help"])
    assert result.code == 0, result.err
    assert "Usage: prometheus" in result.out
    options = result.out.partition("\nOptions:\n")[2].partition("\n\n")[0]
    assert options.startswith("  --"), result.out
    assert not re.search(r"<[a-z][^>]*>", options), options


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke_main(capsys, run, ["--version"])
    assert (result.code, result.err) == (0, "")
    assert result.out == f"prometheus {version('prometheus-engine-runs')}\n"


def test_health_and_metrics_listen_on_loopback_unless_told() -> None:
    reactor = typer.main.get_command(app).commands["reactor"]  # type: ignore[attr-defined]
    (host,) = [p for p in reactor.params if p.name == "metrics_host"]
    assert host.default == "127.0.0.1"
    for entry in (serve, Reactor.__init__):
        assert inspect.signature(entry).parameters["metrics_host"].default == "127.0.0.1"
