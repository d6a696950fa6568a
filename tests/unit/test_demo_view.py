"""The demo's live view and summary (no database): a fixed row order from the first frame,
the clock and the current activity, a last frame that says it is done, and a kept
database named without its password."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pytest
from rich.console import Console

from prometheus.cli.demo import print_summary
from prometheus.cli.output import ResultFormat
from prometheus.demo.scenario import DemoFrame, DemoResult
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


@pytest.mark.parametrize(
    ("url", "shown", "hint"),
    [
        ("postgresql://demo:s3cret@db.example.org/prometheus_demo", "demo:***@", True),
        ("postgresql://postgres@/prometheus_demo?host=/tmp/pg", "postgres@", False),
    ],
)
def test_the_kept_database_is_named_without_its_password(
    capsys: pytest.CaptureFixture[str], url: str, shown: str, hint: bool
) -> None:
    outcome = DemoResult(url, 4, 4, 55.0, 90.0, 6.1, 1.7, None)
    print_summary(outcome, keep=True, fmt=ResultFormat.TEXT)
    out = capsys.readouterr().out
    assert out.startswith("4 of 4 runs COMPLETED in 6.1s (1.7s of set-up); ")
    assert f"  export PROMETHEUS_DATABASE_URL='postgresql://{shown}" in out
    assert "s3cret" not in out
    assert ("the password in the URL is shown as ***" in out) is hint

    print_summary(outcome, keep=True, fmt=ResultFormat.JSON)
    record = json.loads(capsys.readouterr().out)
    assert (record["runs_completed"], record["elapsed_s"]) == (4, 6.1)
    assert "s3cret" not in record["database_url"]
