"""Rows to stdout as a table, CSV or JSON (no database)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from prometheus.cli.render import Format, as_record, cell, render
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
