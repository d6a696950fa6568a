"""Rows to stdout as a readable table, CSV or JSON. Data goes to stdout, talk to stderr."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


Record = Mapping[str, Any]
PIPE_WIDTH = 1000
FormatOption = Annotated[
    Format, typer.Option("--format", metavar="[table|csv|json]", help="How to print the rows.")
]


def as_record(obj: Any) -> dict[str, Any]:
    """A dataclass instance as a plain dict (enums as their values)."""
    return {k: v for k, v in dataclasses.asdict(obj).items()}


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def render(records: Sequence[Record], columns: Sequence[str], fmt: Format, title: str = "") -> None:
    if fmt is Format.JSON:
        rows = [{c: _jsonable(r.get(c)) for c in columns} for r in records]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif fmt is Format.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell(r.get(c)) for c in columns] for r in records)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title or None, show_lines=False)
        for column in columns:
            # Fold, never truncate: "WAITING_FOR_…" or a clipped timestamp would mislead.
            table.add_column(column, overflow="fold")
        for r in records:
            table.add_row(*(cell(r.get(c)) for c in columns))
        # A terminal gets its own width; a pipe or file has none, so each row stays one
        # whole line there (the table is sized to its content, never padded to this width).
        width = None if sys.stdout.isatty() else PIPE_WIDTH
        Console(file=sys.stdout, width=width).print(table)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
