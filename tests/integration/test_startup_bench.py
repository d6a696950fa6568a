"""``prometheus bench startup`` end to end, once each (the real one starts each command
ten times): it says what it measured. Speed itself is not asserted (README has numbers)."""

from __future__ import annotations

import json

import pytest

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
