"""Rows on stdout: a plain table for people, CSV or JSON for programs.

The table is plain text (a header line, then one line per row, columns two spaces
apart): it reads in a terminal, survives a pipe, ``grep`` and ``less``, and needs no
library. It fits the width it is given: ``COLUMNS`` when set, else the terminal's when
stdout is one; a pipe or a file without ``COLUMNS`` gets every value whole. To fit, a
command's table view shows times as ages (``3m ago``, ``in 40s``), and cuts the long free
text of its squeezable columns with ``…``; ``runs show`` and ``--format csv|json`` always
carry the full values.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from prometheus.cli.output import jsonable


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


Record = Mapping[str, Any]
FormatOption = Annotated[
    Format, typer.Option("--format", metavar="[table|csv|json]", help="How to print the rows.")
]
GAP = "  "
ELLIPSIS = "…"
MIN_SQUEEZED = 8  # a squeezed column keeps at least this much (or its header)


def as_record(obj: Any) -> dict[str, Any]:
    """A dataclass instance as a plain dict."""
    return dict(dataclasses.asdict(obj))


def cell(value: Any) -> str:
    """A value in full, as CSV carries it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def age(value: Any, now: datetime) -> str:
    """A time as how long ago it was (``3m ago``) or how far ahead it is (``in 40s``)."""
    if not isinstance(value, datetime):
        return cell(value)
    delta = now - value
    text = _span(abs(delta))
    return f"{text} ago" if delta >= timedelta(0) else f"in {text}"


def clock(value: Any, now: datetime) -> str:
    """A time as ``MM-DD HH:MM:SS`` in UTC (the year only when it is not this year's)."""
    if not isinstance(value, datetime):
        return cell(value)
    utc = value.astimezone(UTC)
    return utc.strftime("%m-%d %H:%M:%S" if utc.year == now.year else "%Y-%m-%d %H:%M")


def time_of_day(value: Any, now: datetime) -> str:
    """A time as ``HH:MM`` in UTC, for a row whose date is already shown."""
    if not isinstance(value, datetime):
        return cell(value)
    return value.astimezone(UTC).strftime("%H:%M")


def one_line(value: Any, now: datetime) -> str:
    """Free text (an error, a JSON detail) on one line: newlines become spaces."""
    return " ".join(cell(value).split())


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Column:
    """One column of a table view: the record's key, its header, how a value reads, and
    whether it may be cut to fit (free text; never ids, dates, phases or counts)."""

    key: str
    header: str = ""
    show: Callable[[Any, datetime], str] = lambda value, now: cell(value)
    squeeze: bool = False

    @property
    def title(self) -> str:
        return self.header or self.key


def render(
    records: Sequence[Record],
    columns: Sequence[str],
    fmt: Format,
    *,
    table: Sequence[Column] | None = None,
    title: str = "",
    now: datetime | None = None,
    width: int | None = None,
) -> None:
    """``columns`` for CSV and JSON (full values); ``table`` for the table view (default:
    every column, the last one squeezable), under ``title`` if one is given. ``now`` and
    ``width`` default to the clock and ``output_width()``."""
    if fmt is Format.JSON:
        rows = [{c: jsonable(r.get(c)) for c in columns} for r in records]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif fmt is Format.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell(r.get(c)) for c in columns] for r in records)
    else:
        view = table or [Column(c, squeeze=c == columns[-1]) for c in columns]
        width = width or output_width()
        lines = table_lines(records, view, now=now or datetime.now(UTC), width=width)
        heading = [_cut(title, width or len(title))] if title else []
        sys.stdout.write("".join(f"{line}\n" for line in [*heading, *lines]))


def output_width() -> int | None:
    """``COLUMNS`` if set, else the terminal's width if stdout is one; None (no limit)
    for a pipe or a file: a value cut there would be lost to ``grep``."""
    return shutil.get_terminal_size(fallback=(0, 0)).columns or None


def table_lines(
    records: Sequence[Record], view: Sequence[Column], *, now: datetime, width: int | None
) -> list[str]:
    """The table's lines, each at most ``width`` characters when squeezing allows."""
    rows = [[c.show(r.get(c.key), now) for c in view] for r in records]
    widths = [max([len(c.title), *(len(row[i]) for row in rows)]) for i, c in enumerate(view)]
    if width is not None:
        widths = _fit(widths, view, width)
    header = [c.title for c in view]
    return [_line(cells, widths) for cells in [header, *rows]]


def _fit(widths: list[int], view: Sequence[Column], width: int) -> list[int]:
    """Take characters from the widest squeezable column until the table fits (or every
    squeezable column is down to its minimum)."""
    widths = list(widths)
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    floors = [max(len(c.title), MIN_SQUEEZED) for c in view]
    while excess > 0:
        room = [(widths[i] - floors[i], i) for i, c in enumerate(view) if c.squeeze]
        spare, widest = max(room, default=(0, -1))
        if spare <= 0:
            break
        take = min(spare, excess)
        widths[widest] -= take
        excess -= take
    return widths


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    fitted = [_cut(text, w).ljust(w) for text, w in zip(cells, widths, strict=True)]
    return GAP.join(fitted).rstrip()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


def record_lines(record: Record, keys: Sequence[str], *, now: datetime) -> list[str]:
    """One record, a key per line and the value whole (``runs show``): times with their
    age, so nothing needs a wide terminal."""
    label = max(len(k) for k in keys)
    lines = []
    for key in keys:
        value = record.get(key)
        text = cell(value)
        if isinstance(value, datetime):
            text = f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({age(value, now)})"
        lines.append(f"{key.ljust(label)}{GAP}{text}".rstrip())
    return lines
