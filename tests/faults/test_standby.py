"""A standby is named as one: a CLI command that must write, run against a standby, is one
line saying so and what to set; a multi-host URL with ``target_session_attrs=read-write``
finds the primary behind it."""

from __future__ import annotations

import pytest

from prometheus.db.databases import create_database, upgrade_database, with_database
from tests.support.cli_runner import invoke
from tests.support.clusters import ClusterFactory

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
