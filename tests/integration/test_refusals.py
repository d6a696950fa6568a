"""Input that must be refused (SPEC section 5): exit 2, one line on stderr, nothing written.

Each case below was accepted with exit 0 before: an unknown region, prices for a day the
exchange does not trade, prices under a dataset the region does not require, a date
outside the calendar. "Nothing written" is checked on every row of every table the
commands touch (``snapshot``), through the real entry points (the CLI and the seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from prometheus.calendar import TradingCalendar
from prometheus.cli.app import run
from prometheus.ingestion import require_datasets
from prometheus.pipeline.state import find_run
from prometheus.scripts import run_engine_state, show_engine_runs
from tests.support.cli_runner import Result, invoke_main
from tests.support.ingestion_data import add_instruments, price_rows, snapshot, write_prices

SESSION = "2026-11-24"  # a Tuesday: XNYS trades
SATURDAY = "2026-11-28"
THANKSGIVING = "2026-11-26"


def beyond_the_calendar() -> str:
    """A weekday a week past the last day the US calendar vouches for, seen from today as
    the CLI sees it (a year typo). Asked when the test runs, with a week to spare, so a
    run that crosses midnight (the window moves a day) still asks about a day outside."""
    _, last = TradingCalendar().bounds("US", datetime.now(UTC).date())
    day = last + timedelta(days=7)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.isoformat()


LONG_AGO = "1990-03-02"  # a Friday, long before the calendar's window


Main = Callable[[Sequence[str]], int]


class Entry:
    """One entry point (``prometheus`` or a seed script) against the test database."""

    def __init__(self, db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        self.db_url = db_url
        self.capsys = capsys
        self.prices = write_prices(tmp_path / "prices.csv", price_rows(["A", "B"]))
        self.instruments = tmp_path / "instruments.csv"
        self.instruments.write_text("instrument_id,symbol\nA,AAA\nB,BBB\n")

    def __call__(self, main: Main, *args: str) -> Result:
        files = {"prices": str(self.prices), "instruments": str(self.instruments)}
        argv = ["--database-url", self.db_url, *(a.format(**files) for a in args)]
        return invoke_main(self.capsys, main, argv)

    def refused(self, main: Main, *args: str, message: str) -> str:
        """Run a command that must be refused; nothing it could touch may change."""
        before = snapshot(self.db_url)
        result = self(main, *args)
        assert result.code == 2, result
        assert result.out == ""
        assert len(result.err_lines) == 1, result.err
        assert message in result.err_lines[0], result.err
        assert "Traceback" not in result.err
        assert snapshot(self.db_url) == before
        return result.err_lines[0]


@pytest.fixture
def entry(db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Entry:
    return Entry(db_url, capsys, tmp_path)


@pytest.fixture
def us_ready_for_prices(engine: Engine) -> Engine:
    """US has instruments A and B and requires `prices`: a valid load target."""
    add_instruments(engine, "US", ["A", "B"])
    require_datasets(engine, "US", ["prices"])
    return engine


# --- an unknown region, wherever a region is typed ----------------------------------------------

UNKNOWN_REGION = [
    (run, ["runs", "ensure", "--as-of", SESSION, "--region", "ZZ"]),
    (run, ["runs", "ensure", "--as-of", SESSION, "--region", "ZZ", "--data-ready", "--force"]),
    (run_engine_state.main, ["--as-of", SESSION, "--region", "ZZ", "--ensure", "--data-ready"]),
    (run_engine_state.main, ["--as-of", SESSION, "--region", "zz"]),
    (run, ["datasets", "require", "--region", "ZZ", "prices"]),
    (run, ["datasets", "drop", "--region", "ZZ", "prices"]),
    (run, ["ingest", "instruments", "--region", "ZZ", "{instruments}"]),
    (run, ["ingest", "prices", "--as-of", SESSION, "--region", "ZZ", "{prices}"]),
    (run, ["ingest", "prices", "--as-of", SESSION, "--region", "ZZ", "--force", "{prices}"]),
    (run, ["runs", "advance", "--as-of", SESSION, "--region", "ZZ"]),
    (run, ["runs", "cancel", "--as-of", SESSION, "--region", "ZZ", "--reason", "x"]),
    (run, ["runs", "list", "--region", "ZZ"]),
    (show_engine_runs.main, ["--region", "ZZ"]),
    (run, ["ingest", "status", "--region", "ZZ"]),
    (run, ["datasets", "list", "--region", "ZZ"]),
    (run, ["calendar", "--region", "ZZ"]),
]


@pytest.mark.parametrize(
    ("main", "args"), UNKNOWN_REGION, ids=[" ".join(a[:2]) for _, a in UNKNOWN_REGION]
)
def test_an_unknown_region_is_refused_everywhere(
    entry: Entry, us_ready_for_prices: Engine, main: Main, args: list[str]
) -> None:
    line = entry.refused(main, *args, message="unknown region 'ZZ'; known regions: EU, JP, UK, US")
    assert "PROMETHEUS_REGION_EXCHANGES" in line


def test_a_region_is_known_when_the_configured_map_names_it(
    entry: Entry, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_REGION_EXCHANGES", "HK=XHKG")
    assert entry(run, "datasets", "require", "--region", "hk", "prices").code == 0
    entry.refused(run, "datasets", "require", "--region", "US", "prices", message="'US'")
    assert entry(run, "runs", "ensure", "--as-of", SESSION, "--region", "HK").code == 0
    assert find_run(engine, date(2026, 11, 24), "HK") is not None


# --- prices for a day the exchange does not trade -----------------------------------------------


@pytest.mark.parametrize("day", [SATURDAY, THANKSGIVING])
def test_prices_for_a_closed_day_are_refused_unless_forced(
    entry: Entry, us_ready_for_prices: Engine, day: str
) -> None:
    args = ["ingest", "prices", "--as-of", day, "--region", "US", "{prices}"]
    line = entry.refused(run, *args, message=f"{day} (")
    assert line.endswith("is not a trading day for US (XNYS); pass --force to load it anyway")

    forced = entry(run, *args, "--force")
    assert forced.code == 0, forced.err
    assert "not a trading day for US (XNYS); going ahead (--force)" in forced.err
    assert forced.out.startswith(f"prices {day} US: 2 row(s) loaded, batch COMPLETE")


# --- prices under a dataset the region does not require -----------------------------------------


def test_a_dataset_the_region_does_not_require_is_refused_unless_forced(
    entry: Entry, us_ready_for_prices: Engine
) -> None:
    args = ["ingest", "prices", "--as-of", SESSION, "--region", "US", "--dataset", "eod"]
    line = entry.refused(run, *args, "{prices}", message="US does not require dataset 'eod'")
    assert "(it requires: prices), so its batch would make no run ready" in line
    assert "`prometheus datasets require --region US eod`, or pass --force" in line

    forced = entry(run, *args, "--force", "{prices}")
    assert forced.code == 0, forced.err
    assert "US does not require dataset 'eod'" in forced.err
    assert "going ahead (--force)" in forced.err
    assert forced.out.startswith(f"eod {SESSION} US: 2 row(s) loaded")


def test_prices_for_a_region_that_requires_nothing_are_refused(
    entry: Entry, engine: Engine
) -> None:
    add_instruments(engine, "US", ["A", "B"])
    args = ["ingest", "prices", "--as-of", SESSION, "--region", "US", "{prices}"]
    entry.refused(run, *args, message="US does not require dataset 'prices' (it requires: nothing)")


# --- a date the calendar cannot vouch for ------------------------------------------------------


@pytest.mark.parametrize(
    "pick_day", [beyond_the_calendar, lambda: LONG_AGO], ids=["year typo", "long ago"]
)
@pytest.mark.parametrize(
    ("main", "args", "doing"),
    [
        (run, ["runs", "ensure", "--region", "US"], "ensure the run"),
        (run, ["runs", "ensure", "--region", "US", "--data-ready"], "ensure the run"),
        (run_engine_state.main, ["--region", "US", "--ensure"], "ensure the run"),
        (run, ["ingest", "prices", "--region", "US", "{prices}"], "load it"),
    ],
    ids=["runs ensure", "runs ensure --data-ready", "run_engine_state --ensure", "ingest prices"],
)
def test_a_date_outside_the_calendar_is_refused_unless_forced(
    entry: Entry,
    us_ready_for_prices: Engine,
    main: Main,
    args: list[str],
    doing: str,
    pick_day: Callable[[], str],
) -> None:
    day = pick_day()
    args = [*args, "--as-of", day]
    line = entry.refused(main, *args, message=f"{day} is outside the XNYS")
    assert line.endswith(f"so nothing says US trades then; pass --force to {doing} anyway")

    forced = entry(main, *args, "--force")
    assert forced.code == 0, forced.err
    assert "going ahead (--force)" in forced.err
