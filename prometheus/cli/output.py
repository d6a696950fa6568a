"""Where a command's words go: its result on stdout, everything else on stderr.

The rule (README, "Command line"): a command that creates or changes something prints
its result on stdout, one line, or one JSON object with ``--format json``, so that
``X=$(prometheus runs ensure ...)`` captures it and a script can parse it. Progress,
hints, warnings and logs go to stderr, where a pipe does not swallow them and a capture
does not mix them in. Read commands print their rows on stdout (``render``).

A new command takes ``fmt: ResultFormatOption = ResultFormat.TEXT`` and ends with
``result(line, record, fmt)``; ``note`` and ``warn`` are for everything else, and
``Progress`` counts long work on a terminal.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer


class ResultFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


ResultFormatOption = Annotated[
    ResultFormat,
    typer.Option("--format", metavar="[text|json]", help="The result as a line or a JSON object."),
]


def result(line: str, record: Mapping[str, Any], fmt: ResultFormat) -> None:
    """The command's result on stdout: ``line``, or ``record`` as one JSON object."""
    if fmt is ResultFormat.JSON:
        sys.stdout.write(json.dumps(jsonable(record)) + "\n")
    else:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A line for the operator, not for the script reading stdout."""
    print(text, file=sys.stderr, flush=True)


def warn(text: str) -> None:
    """Something went ahead that the operator should know about (``--force``, say)."""
    note(warning(text))


def warning(text: str) -> str:
    return f"prometheus: warning: {text}"


def jsonable(value: Any) -> Any:
    """Dates and times as ISO 8601, durations as seconds, dataclasses and mappings as
    objects, enums as their values: what ``json.dumps`` takes and a script expects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, StrEnum):
        return str(value)
    return value


class Progress:
    """A one-line count of long work, redrawn in place on stderr while it is a terminal
    (nothing at all otherwise: a log file or a pipe gets the result, not the ticks).

    ``with Progress("advancing", total=n) as progress: ... progress.advance()``; the line
    is cleared when the work ends, so the result that follows stands alone.
    """

    REDRAW_S = 0.1  # at most ten redraws a second: a terminal is slower than the work

    def __init__(self, what: str, *, total: int | None = None) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.detail = ""
        self._shown = sys.stderr.isatty()
        self._started = time.monotonic()
        self._drawn_at = 0.0

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._clear()

    def note(self, text: str) -> None:
        """A line that stays (``note``), printed above the progress line."""
        self._clear()
        note(text)
        self._draw(force=True)

    def advance(self, by: int = 1, *, detail: str = "") -> None:
        self.done += by
        self.detail = detail or self.detail
        self._draw()

    def step(self, detail: str) -> None:
        """Name the current stage of work that has no count."""
        self.detail = detail
        self._draw(force=True)

    def _clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._shown or (not force and now - self._drawn_at < self.REDRAW_S):
            return
        self._drawn_at = now
        count = f" {self.done}/{self.total}" if self.total is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        line = f"{self.what}{count}{detail} ({now - self._started:.0f}s)"
        width = shutil.get_terminal_size().columns - 1  # a wrapped line cannot be redrawn
        sys.stderr.write(f"\r\x1b[2K{line[:width]}")
        sys.stderr.flush()
