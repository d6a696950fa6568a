"""Read and validate the CSV files an ingestion job hands in, before anything is written.

A file is checked whole and every problem is collected with its line number, so an
operator fixes the file once instead of once per rerun. Parsing is strict (no stray
whitespace, no ``nan``, no ``1_000``): a vendor file that drifts should fail loudly
here, not load quietly and skew the signals.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, NamedTuple, TextIO, TypeVar

from prometheus.errors import InputError

PRICES_HEADER = ("instrument_id", "open", "high", "low", "close", "volume")
INSTRUMENTS_HEADER = ("instrument_id", "symbol")
MAX_VOLUME = 2**63 - 1  # prices_daily.volume is a bigint
MAX_PROBLEMS_LISTED = 1000

_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_UNSIGNED = re.compile(r"^\d+$")

Row = TypeVar("Row")


class PriceRow(NamedTuple):
    instrument_id: str
    open: float
    high: float
    low: float
    close: float
    volume: int


class InstrumentRow(NamedTuple):
    instrument_id: str
    symbol: str


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class InvalidCsv(InputError):
    """A CSV file failed validation; ``problems`` lists every one, nothing was written.

    The message is a summary line, then one ``FILE:LINE: problem`` line each (compiler
    style, so an editor or grep can jump to it), at most MAX_PROBLEMS_LISTED of them: a
    file broken on every line is broken in one way, and saying it a million times helps
    nobody. ``problems`` always has them all.
    """

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(sorted(problems, key=lambda p: p.line))
        lines = [f"{source}: {len(self.problems)} problem(s), nothing written"]
        lines += [f"{source}:{p.line}: {p.message}" for p in self.problems[:MAX_PROBLEMS_LISTED]]
        if len(self.problems) > MAX_PROBLEMS_LISTED:
            lines.append(f"{source}: ... and {len(self.problems) - MAX_PROBLEMS_LISTED} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class CsvRows(Generic[Row]):
    """What a file holds: its valid rows, the problems of the others, and the first line
    of every instrument it names (valid row or not), for the database checks that follow.
    Nothing may be written from it unless ``raise_problems`` passes."""

    source: str
    rows: list[Row]
    problems: tuple[Problem, ...]
    instrument_lines: dict[str, int]

    def raise_problems(self, more: Sequence[Problem] = ()) -> None:
        """Raise InvalidCsv with this file's problems and ``more`` (say, unknown
        instruments), all in line order; return if there are none."""
        if self.problems or more:
            raise InvalidCsv(self.source, [*self.problems, *more])


def read_prices_csv(path: Path) -> CsvRows[PriceRow]:
    """Parse ``instrument_id,open,high,low,close,volume``, collecting every problem.

    Raises at once (InputError) only when nothing more can be said: the file cannot be
    read, is not UTF-8, is empty or has another header. Row problems are returned, to be
    reported together with the instruments the database does not know (load_prices)."""
    return _read(path, PRICES_HEADER, _price_row)


def read_instruments_csv(path: Path) -> CsvRows[InstrumentRow]:
    """Parse ``instrument_id,symbol``, collecting every problem (as read_prices_csv)."""
    return _read(path, INSTRUMENTS_HEADER, _instrument_row)


def _read(
    path: Path,
    header: tuple[str, ...],
    parse_row: Callable[[list[str], list[str]], Row | None],
) -> CsvRows[Row]:
    source = str(path)
    rows: list[Row] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    try:
        # utf-8-sig: spreadsheet exports start with a byte-order mark; it is not data.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            records = _records(handle, problems)
            found_header = next(records, None)
            if found_header is None:
                empty = Problem(1, f"empty file: expected the header {','.join(header)}")
                raise InvalidCsv(source, problems or [empty])
            line, names = found_header
            if tuple(names) != header:
                got = ",".join(names)
                raise InvalidCsv(
                    source, [Problem(line, f"header is {got!r}, expected {','.join(header)!r}")]
                )
            for line, fields in records:
                messages: list[str] = []
                parsed = None
                if len(fields) != len(header):
                    messages.append(f"expected {len(header)} fields, got {len(fields)}")
                elif any("\x00" in f for f in fields):  # PostgreSQL text cannot hold one
                    messages.append("contains a NUL byte")
                else:
                    parsed = parse_row(fields, messages)
                    key = fields[0]
                    if key in first_line:
                        messages.append(f"duplicate instrument {key!r} (line {first_line[key]})")
                        parsed = None
                    elif key:
                        first_line[key] = line
                problems.extend(Problem(line, m) for m in messages)
                if parsed is not None:
                    rows.append(parsed)
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text (byte {exc.start}); nothing written") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    if not rows and not problems:
        problems.append(Problem(2, "no data rows after the header"))
    return CsvRows(source, rows, tuple(problems), first_line)


def _records(handle: TextIO, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
    """Non-blank records with the line each ends on; a malformed record (a NUL byte, an
    unclosed quote) is a problem on its line and reading stops there: what follows cannot
    be trusted to be split where the writer meant."""
    reader = csv.reader(handle, strict=True)
    try:
        for fields in reader:
            if fields:
                yield reader.line_num, fields
    except csv.Error as exc:
        problems.append(Problem(reader.line_num, f"malformed CSV: {exc}"))


def _price_row(fields: list[str], messages: list[str]) -> PriceRow | None:
    instrument_id = fields[0]
    if not instrument_id:
        messages.append("empty instrument_id")
    named = zip(PRICES_HEADER[1:5], fields[1:5], strict=True)
    prices = [_price(name, text, messages) for name, text in named]
    volume = _volume(fields[5], messages)
    open_, high, low, close = prices
    if high is not None and low is not None and high < low:
        messages.append(f"high {high} is below low {low}")
    if messages or open_ is None or high is None or low is None or close is None:
        return None
    assert volume is not None
    return PriceRow(instrument_id, open_, high, low, close, volume)


def _price(name: str, text: str, messages: list[str]) -> float | None:
    if not _DECIMAL.match(text):
        messages.append(f"{name} {text!r} is not a number")
        return None
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        messages.append(f"{name} {text!r} is not a positive price")
        return None
    return value


def _volume(text: str, messages: list[str]) -> int | None:
    if not _UNSIGNED.match(text):
        messages.append(f"volume {text!r} is not a non-negative integer")
        return None
    value = int(text)
    if value > MAX_VOLUME:
        messages.append(f"volume {text} is larger than {MAX_VOLUME}")
        return None
    return value


def _instrument_row(fields: list[str], messages: list[str]) -> InstrumentRow | None:
    instrument_id, symbol = fields
    if not instrument_id:
        messages.append("empty instrument_id")
    if not symbol:
        messages.append("empty symbol")
    return None if messages else InstrumentRow(instrument_id, symbol)
