"""``prometheus ingest`` and ``prometheus datasets`` through the real entry point
(``prometheus.cli.app.run``): exit codes, what stderr says, and what the database holds.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import find_run
from tests.support.cli_runner import invoke
from tests.support.ingestion_data import PRICES_HEADER, price_rows, snapshot, write_prices

DAY = date(2026, 3, 2)


class Cli:
    """``prometheus --database-url URL ...`` in this process, with its output captured."""

    def __init__(self, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.db_url = db_url
        self.capsys = capsys

    def __call__(self, *args: str | Path) -> tuple[int, str, str]:
        result = invoke(self.capsys, self.db_url, *(str(a) for a in args))
        return result.code, result.out, result.err

    def ok(self, *args: str | Path) -> tuple[str, str]:
        code, out, err = self(*args)
        assert code == 0, err
        return out, err

    def json(self, *args: str | Path) -> Any:
        out, _ = self.ok(*args, "--format", "json")
        return json.loads(out)


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


@pytest.fixture
def us_instruments(cli: Cli, tmp_path: Path) -> Path:
    path = tmp_path / "instruments.csv"
    path.write_text("instrument_id,symbol\nA,AAA\nB,BBB\n")
    out, _ = cli.ok("ingest", "instruments", "--region", "US", path)
    assert out == "US: 2 instrument(s) loaded\n"
    return path


def test_the_last_required_dataset_makes_the_run_data_ready(
    cli: Cli, engine: Engine, tmp_path: Path, us_instruments: Path
) -> None:
    out, _ = cli.ok("datasets", "require", "--region", "us", "prices", "eod_prices")
    assert out == "US requires: eod_prices, prices (2 added)\n"
    prices = write_prices(tmp_path / "p.csv", price_rows(["A", "B"]))

    out, _ = cli.ok("ingest", "prices", "--as-of", "2026-03-02", "--region", "US", prices)
    assert out == "prices 2026-03-02 US: 2 row(s) loaded, batch COMPLETE (2 row(s)); no run yet\n"
    assert find_run(engine, DAY, "US") is None

    args = ("ingest", "prices", "--as-of", "2026-03-02", "--region", "US", "--dataset")
    out, _ = cli.ok(*args, "eod_prices", prices)
    run = find_run(engine, DAY, "US")
    assert run is not None and run.phase is Phase.DATA_READY
    assert out.endswith(f"; run {run.run_id} is DATA_READY\n")

    states = cli.json("ingest", "status", "--as-of", "2026-03-02", "--region", "US")
    assert [(s["dataset"], s["status"], s["row_count"], s["run_phase"]) for s in states] == [
        ("eod_prices", "COMPLETE", 2, "DATA_READY"),
        ("prices", "COMPLETE", 2, "DATA_READY"),
    ]


def test_partial_leaves_the_batch_running(
    cli: Cli, engine: Engine, tmp_path: Path, us_instruments: Path
) -> None:
    cli.ok("datasets", "require", "--region", "US", "prices")
    prices = write_prices(tmp_path / "p.csv", price_rows(["A"]))
    out, _ = cli.ok(
        "ingest", "prices", "--as-of", "2026-03-02", "--region", "US", "--partial", prices
    )
    assert out.endswith("batch RUNNING (1 row(s)); no run yet\n")
    assert find_run(engine, DAY, "US") is None
    (state,) = cli.json("ingest", "status")
    assert (state["status"], state["completed_at"]) == ("RUNNING", None)


def test_a_bad_file_lists_every_problem_then_one_error_line(
    cli: Cli, db_url: str, tmp_path: Path, us_instruments: Path
) -> None:
    cli.ok("datasets", "require", "--region", "US", "prices")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{PRICES_HEADER}\nA,1,2,1,1,-1\nZZZ,1,2,1,1,1\nB,1,1,2,1,1\nA,1,2,1,1,1\n")
    before = snapshot(db_url)

    code, out, err = cli("ingest", "prices", "--as-of", "2026-03-02", "--region", "US", bad)

    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"prometheus: error: {bad}: 4 problem(s), nothing written",
        f"{bad}:2: volume '-1' is not a non-negative integer",
        f"{bad}:3: unknown instrument 'ZZZ' (load it with `ingest instruments`)",
        f"{bad}:4: high 1.0 is below low 2.0",
        f"{bad}:5: duplicate instrument 'A' (line 2)",
    ]
    assert snapshot(db_url) == before


@pytest.mark.parametrize(
    "args",
    [
        ("ingest", "prices", "--as-of", "2026-03-02", "--region", "US", "{missing}"),
        ("ingest", "prices", "--as-of", "2026-03-02", "--region", "US", "{directory}"),
        ("ingest", "instruments", "--region", "US", "{missing}"),
        ("ingest", "prices", "--as-of", "2026-02-30", "--region", "US", "{good}"),
        ("ingest", "prices", "--as-of", "2026-03-02", "--region", "U S", "{good}"),
        (
            "ingest",
            "prices",
            "--as-of",
            "2026-03-02",
            "--region",
            "US",
            "--dataset",
            "a b",
            "{good}",
        ),
        ("ingest", "status", "--as-of", "yesterday"),
        ("datasets", "require", "--region", "US", "bad/name"),
    ],
    ids=[
        "missing file",
        "directory",
        "missing instruments file",
        "bad date",
        "bad region",
        "bad dataset",
        "bad status date",
        "bad dataset name",
    ],
)
def test_bad_input_is_exit_2_with_one_line_and_nothing_written(
    args: tuple[str, ...], cli: Cli, db_url: str, tmp_path: Path, us_instruments: Path
) -> None:
    good = write_prices(tmp_path / "good.csv", price_rows(["A"]))
    paths = {"missing": tmp_path / "nope.csv", "directory": tmp_path, "good": good}
    before = snapshot(db_url)

    code, out, err = cli(*(a.format(**paths) for a in args))

    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith("prometheus: error: "), err
    assert snapshot(db_url) == before


def test_datasets_require_list_and_drop(cli: Cli, engine: Engine) -> None:
    cli.ok("datasets", "require", "--region", "US", "prices", "fundamentals")
    out, _ = cli.ok("datasets", "require", "--region", "US", "prices")
    assert out == "US requires: fundamentals, prices (0 added)\n"
    cli.ok("datasets", "require", "--region", "EU", "prices")

    assert cli.json("datasets", "list") == [
        {"region": "EU", "dataset": "prices"},
        {"region": "US", "dataset": "fundamentals"},
        {"region": "US", "dataset": "prices"},
    ]
    assert cli.json("datasets", "list", "--region", "EU") == [{"region": "EU", "dataset": "prices"}]

    out, err = cli.ok("datasets", "drop", "--region", "US", "fundamentals", "news")
    assert (out, err) == ("US requires: prices (1 dropped)\n", "US did not require: news\n")
    assert [r["dataset"] for r in cli.json("datasets", "list", "--region", "US")] == ["prices"]


def test_status_shows_what_a_waiting_run_still_needs(cli: Cli, engine: Engine) -> None:
    cli.ok("datasets", "require", "--region", "US", "prices", "fundamentals")
    cli.ok("runs", "ensure", "--as-of", "2026-03-02", "--region", "US")
    rows = cli.json("ingest", "status", "--region", "US")
    assert [(r["dataset"], r["status"], r["required"], r["run_phase"]) for r in rows] == [
        ("fundamentals", "MISSING", True, "WAITING_FOR_DATA"),
        ("prices", "MISSING", True, "WAITING_FOR_DATA"),
    ]
    out, _ = cli.ok("ingest", "status", "--format", "csv")
    assert out.splitlines()[0] == (
        "as_of_date,region,dataset,required,status,row_count,started_at,completed_at,run_phase"
    )


def test_bench_ingest_reports_positive_rates(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small run of the benchmark (the real one loads 1,000,000 rows): it works end to
    end and says what it measured. Speed itself is not asserted."""
    args = ("bench", "ingest", "--rows", "20000", "--batch", "5000", "--rounds", "2", "--json")
    bench = invoke(capsys, server_url, *args)
    assert bench.code == 0, bench.err
    result = json.loads(bench.out)
    keys = ("rows_per_s_with_triggers", "rows_per_s_without", "overhead_ratio")
    for key in (*keys, "overhead_ratio_median_round"):
        assert isinstance(result[key], float) and result[key] > 0, (key, result)
    assert (result["rows"], result["batches"], result["runs_made_ready"]) == (20000, 4, 4)
