"""`prometheus calendar`, and `runs ensure` refusing days the region's exchange is shut.

Dates are late 2026, inside exchange_calendars' default window (about 20 years back to
1 year ahead), so these hold until ~2046.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from prometheus.cli.app import run
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import list_runs
from prometheus.scripts import run_engine_state

THANKSGIVING = "2026-11-26"
SATURDAY = "2026-11-28"
HALF_DAY = "2026-11-27"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def calendar_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, err = cli(capsys, "calendar", *args, "--format", "json")
    assert (code, err) == (0, "")
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


# -- calendar ----------------------------------------------------------------------------


def test_thanksgiving_week_lists_sessions_with_closes_and_the_half_day(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = calendar_json(capsys, "--region", "US", "--from", "2026-11-23", "--to", "2026-11-30")
    assert [r["date"] for r in rows] == [
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
        "2026-11-27",
        "2026-11-30",
    ]
    assert [r["half_day"] for r in rows] == [False, False, False, True, False]
    half_day = rows[3]
    assert half_day["open"] == "2026-11-27T14:30:00+00:00"
    assert half_day["close"] == "2026-11-27T18:00:00+00:00"  # 13:00 in New York
    assert rows[0]["close"] == "2026-11-23T21:00:00+00:00"


def test_csv_has_a_header_and_one_line_per_session(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys, "calendar", "--region", "us", "--from", "2026-11-25", "--to", "2026-11-28",
        "--format", "csv",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "date,open,close,half_day",
        "2026-11-25,2026-11-25T14:30:00+00:00,2026-11-25T21:00:00+00:00,False",
        "2026-11-27,2026-11-27T14:30:00+00:00,2026-11-27T18:00:00+00:00,True",
    ]


def test_the_table_names_the_exchange(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(
        capsys, "calendar", "--region", "JP", "--from", "2026-11-23", "--to", "2026-11-24"
    )
    assert code == 0
    assert "JP sessions on XTKS, 2026-11-23..2026-11-24 (UTC)" in out
    assert "2026-11-23" not in out.split("(UTC)")[1]  # Labour Thanksgiving Day in Tokyo
    assert "2026-11-24" in out


def test_default_range_is_the_current_month(capsys: pytest.CaptureFixture[str]) -> None:
    today = datetime.now(UTC).date()
    rows = calendar_json(capsys, "--region", "UK")
    days = [date.fromisoformat(r["date"]) for r in rows]
    assert len(days) >= 15  # every month has at least three weeks of sessions
    assert {(d.year, d.month) for d in days} == {(today.year, today.month)}
    assert days == sorted(days)


def test_from_alone_runs_to_the_end_of_that_month(capsys: pytest.CaptureFixture[str]) -> None:
    rows = calendar_json(capsys, "--region", "US", "--from", "2026-12-28")
    assert [r["date"] for r in rows] == ["2026-12-28", "2026-12-29", "2026-12-30", "2026-12-31"]


def test_a_range_without_sessions_is_empty_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys, "calendar", "--region", "US", "--from", SATURDAY, "--to", "2026-11-29",
        "--format", "json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == []
    assert err == "prometheus: no XNYS sessions from 2026-11-28 to 2026-11-29\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--region", "ZZ"], "unknown region 'ZZ'; known regions: EU, JP, UK, US"),
        (["--region", "US", "--from", "2026-11-30", "--to", "2026-11-23"], "is after --to"),
        (["--region", "US", "--from", "2026-13-01"], "invalid date '2026-13-01'"),
        (["--region", "U S"], "invalid region"),
        ([], "--region"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    code, out, err = cli(capsys, "calendar", *args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert error in err


def test_regions_map_to_exchanges_in_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_REGION_EXCHANGES", "US=XNYS,HK=XHKG")
    rows = calendar_json(capsys, "--region", "HK", "--from", "2026-11-23", "--to", "2026-11-27")
    assert len(rows) == 5  # Hong Kong trades through US Thanksgiving
    code, _, err = cli(capsys, "calendar", "--region", "EU")
    assert code == 2
    assert err == (
        "prometheus: error: Invalid value for '--region': unknown region 'EU'; known regions:"
        " HK, US (PROMETHEUS_REGION_EXCHANGES maps regions to exchanges)\n"
    )


def test_a_mistyped_exchange_in_configuration_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_REGION_EXCHANGES", "US=XNYZ")
    code, out, err = cli(capsys, "calendar", "--region", "US")
    assert (code, out) == (2, "")
    assert err == (
        "prometheus: error: unknown exchange calendar 'XNYZ' (check PROMETHEUS_REGION_EXCHANGES)\n"
    )


# -- runs ensure on the calendar ---------------------------------------------------------


def ensure(
    capsys: pytest.CaptureFixture[str], db_url: str, day: str, *flags: str
) -> tuple[int, str]:
    code, _, err = cli(capsys, "--database-url", db_url, "runs", "ensure", "--as-of", day, *flags)
    return code, err


@pytest.mark.parametrize(("day", "weekday"), [(THANKSGIVING, "Thursday"), (SATURDAY, "Saturday")])
def test_a_holiday_or_weekend_is_refused_and_nothing_is_written(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], day: str, weekday: str
) -> None:
    code, err = ensure(capsys, db_url, day, "--region", "US", "--data-ready")
    assert code == 2
    assert err == (
        f"prometheus: error: {day} ({weekday}) is not a trading day for US (XNYS); "
        "pass --force to ensure the run anyway\n"
    )
    assert list_runs(engine) == []


@pytest.mark.parametrize("day", [THANKSGIVING, SATURDAY])
def test_force_creates_the_run_with_a_warning(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], day: str
) -> None:
    code, _, err = cli(
        capsys,
        "--database-url",
        db_url,
        "runs",
        "ensure",
        "--as-of",
        day,
        "--region",
        "US",
        "--force",
    )
    assert code == 0
    (warning,) = err.splitlines()
    assert warning.startswith(f"prometheus: warning: {day} (")
    assert warning.endswith("is not a trading day for US (XNYS); going ahead (--force)")
    assert [(r.as_of_date.isoformat(), r.phase) for r in list_runs(engine)] == [
        (day, Phase.WAITING_FOR_DATA)
    ]


def test_a_half_day_is_a_trading_day(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = ensure(capsys, db_url, HALF_DAY, "--region", "US", "--data-ready")
    assert code == 0
    assert "warning" not in err
    assert [(r.as_of_date.isoformat(), r.phase) for r in list_runs(engine)] == [
        (HALF_DAY, Phase.DATA_READY)
    ]


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "forced"])
def test_a_region_without_a_calendar_is_refused_even_with_force(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], force: list[str]
) -> None:
    code, err = ensure(capsys, db_url, HALF_DAY, "--region", "ZZ", *force)
    assert code == 2
    assert "unknown region 'ZZ'" in err and len(err.splitlines()) == 1
    assert list_runs(engine) == []


def test_the_configured_exchange_decides(
    engine: Engine,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMETHEUS_REGION_EXCHANGES", "US=XLON")  # London trades that day
    assert ensure(capsys, db_url, THANKSGIVING, "--region", "US")[0] == 0
    assert len(list_runs(engine)) == 1


def test_seed_script_refuses_a_holiday_unless_forced(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = ["--database-url", db_url, "--as-of", THANKSGIVING, "--region", "US", "--ensure"]
    assert run_engine_state.main([*seed, "--data-ready"]) == 2
    assert list_runs(engine) == []
    assert run_engine_state.main([*seed, "--data-ready", "--force"]) == 0
    assert [r.phase for r in list_runs(engine)] == [Phase.DATA_READY]
    assert run_engine_state.commands(["--as-of", HALF_DAY, "--region", "US", "--ensure"]) == [
        ["runs", "ensure", "--as-of", HALF_DAY, "--region", "US"]
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--as-of", THANKSGIVING, "--region", "US", "--force"],
        ["--as-of", THANKSGIVING, "--region", "US", "--advance", "--force"],
        ["--advance-all", "--force"],
    ],
)
def test_seed_script_force_goes_only_with_ensure(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_engine_state.commands(argv)
    assert exited.value.code == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
