"""The issue's "done when": with a reactor running, ingesting the last dataset a region
requires takes the run to COMPLETED, with no other command. The reactor is a real
``prometheus reactor`` process running the reference phase tasks on the loaded prices.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from prometheus.cli.app import run
from prometheus.ingestion import ingestion_batch
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import find_run, run_events
from tests.support.ingestion_data import price_rows, write_prices
from tests.support.reactor_process import ReactorProcesses, wait_for_phase

DAY = date(2026, 3, 2)
IDS = [f"US{n:03d}" for n in range(12)]


@pytest.mark.slow
def test_ingesting_the_last_required_dataset_runs_the_day_to_completed(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    reactors = ReactorProcesses(db_url, tmp_path, phase_tasks="prometheus.pipeline.tasks")
    try:
        reactor = reactors.start()
        instruments = tmp_path / "instruments.csv"
        instruments.write_text("instrument_id,symbol\n" + "".join(f"{i},{i}\n" for i in IDS))
        assert _prometheus(db_url, "ingest", "instruments", "--region", "US", instruments) == 0
        assert _prometheus(db_url, "datasets", "require", "--region", "US", "prices", "news") == 0

        # Earlier days of prices, so the reference signals have returns to work on: a
        # dataset no run waits for, weekends included, so each load needs --force.
        for back in range(1, 6):
            day = DAY - timedelta(days=back)
            history = write_prices(tmp_path / f"{day}.csv", price_rows(IDS, close=10.0 + back))
            args = ("ingest", "prices", "--as-of", day.isoformat(), "--region", "US")
            assert _prometheus(db_url, *args, "--dataset", "history", "--force", history) == 0

        with ingestion_batch(engine, "news", DAY, "US"):  # a job with nothing to copy
            pass
        assert find_run(engine, DAY, "US") is None

        prices = write_prices(tmp_path / "prices.csv", price_rows(IDS, close=9.5))
        args = ("ingest", "prices", "--as-of", DAY.isoformat(), "--region", "US")
        assert _prometheus(db_url, *args, prices) == 0

        created = find_run(engine, DAY, "US")
        assert created is not None
        wait_for_phase(engine, created.run_id, Phase.COMPLETED, timeout=60)
        actors = [(e.to_phase, e.actor) for e in run_events(engine, created.run_id)]
        assert actors == [
            ("WAITING_FOR_DATA", "db"),
            ("DATA_READY", "db"),
            ("SIGNALS_DONE", reactor.id),
            ("UNIVERSES_DONE", reactor.id),
            ("COMPLETED", reactor.id),
        ]
    finally:
        reactors.close()


def _prometheus(db_url: str, *args: str | Path) -> int:
    """The CLI in this process."""
    return run(["--database-url", db_url, *(str(a) for a in args)])
