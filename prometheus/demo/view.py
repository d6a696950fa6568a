"""The demo's live view: its runs moving phase by phase, what it is doing, how long so far.

Drawn with rich's live display on stderr while stderr is a terminal (it is progress, not
the result: the summary goes to stdout). Rows are the demo's planned runs in a fixed
order from the first frame, so none ever jumps; the last frame says the demo is done.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from prometheus.demo.scenario import DemoFrame
from prometheus.pipeline.phases import Phase

PHASE_STYLE = {
    Phase.WAITING_FOR_DATA: "dim",
    Phase.DATA_READY: "yellow",
    Phase.SIGNALS_DONE: "cyan",
    Phase.UNIVERSES_DONE: "blue",
    Phase.COMPLETED: "bold green",
    Phase.FAILED: "bold red",
}
NOT_YET = "not ingested yet"


class LiveView:
    """``with LiveView() as view: run_demo(..., progress=view.update)``."""

    def __init__(self) -> None:
        self._console = Console(stderr=True)
        self._frame = DemoFrame("starting", 0.0)
        self._at = time.monotonic()
        # Redrawn eight times a second from the last frame, so the clock runs between
        # frames (a schema upgrade or a history load sends none for a second or two).
        self._live = Live(
            console=self._console, refresh_per_second=8, get_renderable=self._renderable
        )
        self._shown = self._console.is_terminal

    def __enter__(self) -> LiveView:
        if self._shown:
            self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._shown:
            self._live.stop()

    def update(self, frame: DemoFrame) -> None:
        self._frame, self._at = frame, time.monotonic()
        if self._shown and frame.done:
            self._live.refresh()

    def _renderable(self) -> Group:
        frame = self._frame
        if not frame.done:
            frame = replace(frame, elapsed_s=frame.elapsed_s + time.monotonic() - self._at)
        return render(frame)


def render(frame: DemoFrame) -> Group:
    state = "done" if frame.done else "live"
    title = f"prometheus demo ({state}, {frame.elapsed_s:.1f}s)"
    table = Table(title=title, min_width=60)
    for column in ("as_of_date", "region", "phase", "attempts"):
        table.add_column(column)
    for day, region in frame.planned:
        run = frame.runs.get((day, region))
        if run is None:
            table.add_row(day.isoformat(), region, Text(NOT_YET, style="dim"), "")
        else:
            phase = Text(str(run.phase), style=PHASE_STYLE[run.phase])
            table.add_row(day.isoformat(), region, phase, str(run.attempts))
    counts = Counter(str(r.phase) for r in frame.runs.values())
    tally = ", ".join(f"{phase}: {n}" for phase, n in sorted(counts.items()))
    lines = [Text(frame.activity, style="bold" if frame.done else "")]
    if tally:
        lines.append(Text(tally, style="dim"))
    return Group(table, *lines) if frame.planned else Group(*lines)
