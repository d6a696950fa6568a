"""The shipped wrapper a DAG orchestrator calls, bin/dag/prometheus-step, run for real."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from prometheus.config import subprocess_environment
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import find_run
from tests.support.market_data import seed_region

STEP = Path(__file__).resolve().parents[2] / "bin" / "dag" / "prometheus-step"
DAY = date(2026, 11, 24)


def step(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_environment(
        PROMETHEUS_DATABASE_URL=db_url,
        PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin",
        PROMETHEUS_WAIT_SECONDS="0.1",
    )
    return subprocess.run(
        ["sh", str(STEP), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_ensure_then_drive_takes_a_run_to_completed(engine: Engine, db_url: str) -> None:
    seed_region(engine, "US", DAY)
    assert step(db_url, "ensure", DAY.isoformat(), "US").returncode == 0
    driven = step(db_url, "drive", DAY.isoformat(), "US")
    assert driven.returncode == 0, driven.stderr
    run = find_run(engine, DAY, "US")
    assert run is not None and run.phase is Phase.COMPLETED
    waited = step(db_url, "wait", DAY.isoformat(), "US")  # already COMPLETED: returns at once
    assert waited.returncode == 0, waited.stderr


@pytest.mark.slow
def test_a_run_that_fails_makes_wait_exit_1_and_bad_usage_exit_2(
    engine: Engine, db_url: str
) -> None:
    assert step(db_url, "ensure", DAY.isoformat(), "EU").returncode == 0
    cancelled = subprocess.run(
        [
            sys.executable,
            "-m",
            "prometheus",
            "--database-url",
            db_url,
            "runs",
            "cancel",
            "--as-of",
            DAY.isoformat(),
            "--region",
            "EU",
            "--reason",
            "test",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cancelled.returncode == 0, cancelled.stderr
    waited = step(db_url, "wait", DAY.isoformat(), "EU")
    assert waited.returncode == 1
    assert "FAILED" in waited.stderr
    assert step(db_url, "bogus").returncode == 2
