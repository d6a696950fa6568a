"""Rows to stdout as a table, CSV or JSON (no database)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from prometheus.cli.render import Format, age, as_record, cell, render, table_lines
from prometheus.cli.runs import RUN_TABLE, event_lines
from prometheus.pipeline.phases import Phase

WHEN = datetime(2026, 11, 24, 21, 5, 7, 123456, tzinfo=UTC)
COLUMNS = ["run_id", "as_of_date", "phase", "updated_at", "last_error"]
RECORDS = [
    {
        "run_id": 1,
        "as_of_date": date(2026, 11, 24),
        "phase": Phase.DATA_READY,
        "updated_at": WHEN,
        "last_error": None,
    },
    {
        "run_id": 2,
        "as_of_date": date(2026, 11, 25),
        "phase": Phase.FAILED,
        "updated_at": WHEN,
        "last_error": 'ValueError: bad "quote", comma\nsecond line',
        "not_a_column": "never shown",
    },
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (date(2026, 1, 2), "2026-01-02"),
        (WHEN, "2026-11-24T21:05:07+00:00"),
        ({"b": 1, "a": [1, 2]}, '{"a": [1, 2], "b": 1}'),
        (["x", 1], '["x", 1]'),
        (Phase.COMPLETED, "COMPLETED"),
        (3.5, "3.5"),
        ("text", "text"),
    ],
)
def test_cell(value: object, expected: str) -> None:
    assert cell(value) == expected


def test_as_record_is_a_plain_dict_of_the_dataclass() -> None:
    @dataclass(frozen=True)
    class Thing:
        name: str
        phase: Phase

    assert as_record(Thing("x", Phase.SIGNALS_DONE)) == {"name": "x", "phase": "SIGNALS_DONE"}


def test_csv_parses_back_with_the_csv_module(capsys: pytest.CaptureFixture[str]) -> None:
    render(RECORDS, COLUMNS, Format.CSV)
    out, err = capsys.readouterr()
    assert err == ""
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [list(r) for r in rows] == [COLUMNS, COLUMNS]
    assert rows[0] == {
        "run_id": "1",
        "as_of_date": "2026-11-24",
        "phase": "DATA_READY",
        "updated_at": "2026-11-24T21:05:07+00:00",
        "last_error": "",
    }
    assert rows[1]["last_error"] == 'ValueError: bad "quote", comma\nsecond line'


def test_csv_of_no_rows_is_just_the_header(capsys: pytest.CaptureFixture[str]) -> None:
    render([], COLUMNS, Format.CSV)
    assert capsys.readouterr().out == ",".join(COLUMNS) + "\n"


def test_json_is_a_list_of_objects_with_iso_dates(capsys: pytest.CaptureFixture[str]) -> None:
    render(RECORDS, COLUMNS, Format.JSON)
    out, err = capsys.readouterr()
    assert err == ""
    rows = json.loads(out)
    assert rows == [
        {
            "run_id": 1,
            "as_of_date": "2026-11-24",
            "phase": "DATA_READY",
            "updated_at": WHEN.isoformat(),
            "last_error": None,
        },
        {
            "run_id": 2,
            "as_of_date": "2026-11-25",
            "phase": "FAILED",
            "updated_at": WHEN.isoformat(),
            "last_error": 'ValueError: bad "quote", comma\nsecond line',
        },
    ]


def test_json_of_no_rows_is_an_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    render([], COLUMNS, Format.JSON)
    assert json.loads(capsys.readouterr().out) == []


def test_table_shows_the_title_columns_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    render(RECORDS, COLUMNS, Format.TABLE, title="engine runs")
    out, err = capsys.readouterr()
    assert err == ""
    assert "engine runs" in out
    for text in [*COLUMNS, "2026-11-24", "DATA_READY", "FAILED", "2026-11-24T21:05:07+00:00"]:
        assert text in out
    assert "never shown" not in out


def test_format_values_are_the_option_strings() -> None:
    assert [str(f) for f in Format] == ["table", "csv", "json"]


def test_table_never_truncates_a_value_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    long_error = "PhaseTimeout: " + "x" * 300
    records = [{**RECORDS[0], "phase": Phase.WAITING_FOR_DATA, "last_error": long_error}]
    render(records, COLUMNS, Format.TABLE)
    out = capsys.readouterr().out
    assert "WAITING_FOR_DATA" in out
    assert long_error in out  # whole, on one line, where a pipe or grep can find it
    assert "…" not in out


# --- fitting 80 columns ------------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def run_row(run_id: int, day: int, region: str, phase: Phase, **rest: object) -> dict[str, object]:
    changed = NOW - timedelta(minutes=3 * run_id)
    base = {
        "run_id": run_id,
        "as_of_date": date(2026, 11, day),
        "region": region,
        "phase": phase,
        "attempts": 0,
        "next_attempt_at": None,
        "phase_changed_at": changed,
        "updated_at": changed,
        "last_error": None,
    }
    return {**base, **rest}


RUNS = [
    run_row(1, 23, "US", Phase.COMPLETED),
    run_row(2, 24, "EU", Phase.WAITING_FOR_DATA, phase_changed_at=NOW - timedelta(days=2)),
    run_row(
        113,
        24,
        "US",
        Phase.DATA_READY,
        attempts=2,
        next_attempt_at=NOW + timedelta(seconds=40),
        last_error="TaskFailure: signals failed on attempt 2: division by zero in\n"
        "the volatility of instrument US0042 (no prices for 20 sessions)",
    ),
]

RUNS_AT_80 = """\
id   as_of       region  phase             tries  next    changed  last_error
1    2026-11-23  US      COMPLETED         0              3m ago
2    2026-11-24  EU      WAITING_FOR_DATA  0              2d ago
113  2026-11-24  US      DATA_READY        2      in 40s  5h ago   TaskFailure:…
"""


def test_runs_list_at_80_columns_snapshot() -> None:
    lines = table_lines(RUNS, RUN_TABLE, now=NOW, width=80)
    assert "\n".join(lines) + "\n" == RUNS_AT_80
    assert max(len(line) for line in lines) <= 80


def test_a_wider_terminal_shows_more_of_the_error() -> None:
    lines = table_lines(RUNS, RUN_TABLE, now=NOW, width=120)
    assert max(len(line) for line in lines) == 120
    assert lines[-1].endswith("TaskFailure: signals failed on attempt 2: division b…")
    whole = table_lines(RUNS, RUN_TABLE, now=NOW, width=None)  # a pipe: nothing cut
    assert whole[-1].endswith("(no prices for 20 sessions)")
    assert "…" not in "".join(whole)


EVENTS = [
    {
        "at": datetime(2026, 11, 24, 21, 5, 7, tzinfo=UTC),
        "kind": "transition",
        "from_phase": None,
        "to_phase": "WAITING_FOR_DATA",
        "actor": "db",
        "detail": {},
    },
    {
        "at": datetime(2026, 11, 24, 21, 6, 0, tzinfo=UTC),
        "kind": "attempt_failed",
        "from_phase": "DATA_READY",
        "to_phase": "DATA_READY",
        "actor": "reactor-host-a.example.org:41233:9f3c2a",
        "detail": {"attempt": 1, "error": "TaskFailure:" + " boom" * 20},
    },
]

EVENTS_AT_80 = """\
at              kind            from        to                actor
11-24 21:05:07  transition                  WAITING_FOR_DATA  db
11-24 21:06:00  attempt_failed  DATA_READY  DATA_READY        reactor-host-a.ex…
    {"attempt": 1, "error": "TaskFailure: boom boom boom boom boom boom boom
    boom boom boom boom boom boom boom boom boom boom boom boom boom"}
"""


def test_runs_show_events_at_80_columns_snapshot() -> None:
    lines = event_lines(EVENTS, now=NOW, width=80)
    assert "\n".join(lines) + "\n" == EVENTS_AT_80
    assert max(len(line) for line in lines) <= 80


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=5), "5s ago"),
        (timedelta(minutes=3, seconds=59), "3m ago"),
        (timedelta(hours=5), "5h ago"),
        (timedelta(days=2, hours=23), "2d ago"),
        (-timedelta(seconds=40), "in 40s"),
        (-timedelta(minutes=15), "in 15m"),
    ],
)
def test_ages(delta: timedelta, expected: str) -> None:
    assert age(NOW - delta, NOW) == expected
    assert age(None, NOW) == ""
