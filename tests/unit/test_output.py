"""Where a command's words go (no database): results, notes, and progress that is drawn
only on a terminal and leaves nothing behind."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from prometheus.cli.output import Progress, ResultFormat, jsonable, result
from prometheus.pipeline.phases import Phase


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_counts_on_a_terminal_and_clears_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.setattr(Progress, "REDRAW_S", 0.0)
    with Progress("advancing runs", total=3) as progress:
        progress.advance()
        progress.note("run 1 2026-11-24 US: advanced, now SIGNALS_DONE")
        progress.advance(detail="run 2")
    drawn = screen.getvalue()
    assert "\r\x1b[2Kadvancing runs 1/3 (0s)" in drawn
    assert "\r\x1b[2Kadvancing runs 2/3: run 2 (0s)" in drawn
    # A note stands on a line of its own, and the progress line is gone at the end.
    assert "\r\x1b[2Krun 1 2026-11-24 US: advanced, now SIGNALS_DONE\n" in drawn
    assert drawn.endswith("\r\x1b[2K")


def test_progress_draws_nothing_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("bench latency") as progress:
        progress.step("run 1/520")
        progress.note("a note still shows")
    assert capsys.readouterr() == ("", "a note still shows\n")


def test_a_result_is_one_line_or_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    @dataclass(frozen=True)
    class Thing:
        day: date
        at: datetime
        phase: Phase
        wait: timedelta

    thing = Thing(
        date(2026, 11, 24),
        datetime(2026, 11, 24, 21, tzinfo=UTC),
        Phase.FAILED,
        timedelta(seconds=90),
    )
    result("done", {"thing": thing, "ids": (1, 2)}, ResultFormat.TEXT)
    result("done", {"thing": thing, "ids": (1, 2)}, ResultFormat.JSON)
    text, as_json = capsys.readouterr().out.splitlines()
    assert text == "done"
    assert json.loads(as_json) == {
        "thing": {
            "day": "2026-11-24",
            "at": "2026-11-24T21:00:00+00:00",
            "phase": "FAILED",
            "wait": 90.0,
        },
        "ids": [1, 2],
    }
    assert jsonable(None) is None
