"""The demo's live view (no database): a fixed row order from the first frame, the clock
and the current activity, and a last frame that says it is done."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from rich.console import Console

from prometheus.demo.scenario import DemoFrame
from prometheus.demo.view import NOT_YET, LiveView, render
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.runs import Run

MON, TUE = date(2026, 11, 23), date(2026, 11, 24)
PLANNED = ((MON, "EU"), (MON, "US"), (TUE, "EU"), (TUE, "US"))
AT = datetime(2026, 11, 24, 22, tzinfo=UTC)


def run(run_id: int, day: date, region: str, phase: Phase) -> Run:
    return Run(run_id, day, region, phase, 0, None, None, AT, AT, AT)


def text(frame: DemoFrame) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(render(frame))
    return buffer.getvalue()


def rows(output: str) -> list[tuple[str, str, str]]:
    cells = [line.strip("│ ").split("│") for line in output.splitlines() if line.startswith("│")]
    return [(c[0].strip(), c[1].strip(), c[2].strip()) for c in cells]


def test_rows_keep_their_places_whatever_exists_or_moves() -> None:
    early = DemoFrame(
        "ingesting 2026-11-24 EU", 3.2, PLANNED, {(TUE, "EU"): run(1, TUE, "EU", Phase.DATA_READY)}
    )
    later = DemoFrame(
        "ingesting 2026-11-24 US",
        4.0,
        PLANNED,
        {
            (TUE, "EU"): run(1, TUE, "EU", Phase.COMPLETED),
            (MON, "US"): run(2, MON, "US", Phase.SIGNALS_DONE),
        },
    )
    first, second = text(early), text(later)
    assert rows(first) == [
        ("2026-11-23", "EU", NOT_YET),
        ("2026-11-23", "US", NOT_YET),
        ("2026-11-24", "EU", "DATA_READY"),
        ("2026-11-24", "US", NOT_YET),
    ]
    assert [r[:2] for r in rows(second)] == [r[:2] for r in rows(first)]
    assert "prometheus demo (live, 3.2s)" in first
    assert "ingesting 2026-11-24 EU" in first
    assert "COMPLETED: 1, SIGNALS_DONE: 1" in second


def test_the_last_frame_says_done() -> None:
    runs = {key: run(n, *key, Phase.COMPLETED) for n, key in enumerate(PLANNED, 1)}
    output = text(DemoFrame("done: all 4 runs COMPLETED", 9.4, PLANNED, runs, done=True))
    assert "prometheus demo (done, 9.4s)" in output
    assert "done: all 4 runs COMPLETED" in output
    assert "live" not in output


def test_set_up_frames_show_the_activity_alone() -> None:
    output = text(DemoFrame("upgrading its schema", 1.0))
    assert output.strip() == "upgrading its schema"


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with LiveView() as view:
        view.update(DemoFrame("creating the database prometheus_demo", 0.1))
        view.update(DemoFrame("done", 1.0, PLANNED, {}, done=True))
    assert capsys.readouterr() == ("", "")
