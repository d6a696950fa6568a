"""``prometheus demo``: the product end to end, shown live (see prometheus.demo)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from prometheus.cli.context import state
from prometheus.config import redact_urls
from prometheus.pipeline.phases import Phase

if TYPE_CHECKING:
    from rich.console import Console, Group

    from prometheus.demo import DemoResult
    from prometheus.pipeline.runs import Run

PHASE_STYLE = {
    Phase.WAITING_FOR_DATA: "dim",
    Phase.DATA_READY: "yellow",
    Phase.SIGNALS_DONE: "cyan",
    Phase.UNIVERSES_DONE: "blue",
    Phase.COMPLETED: "bold green",
    Phase.FAILED: "bold red",
}


def demo(
    ctx: typer.Context,
    days: Annotated[
        int, typer.Option(min=1, max=60, metavar="N", help="Market days to ingest.")
    ] = 5,
    instruments: Annotated[
        int, typer.Option(min=5, metavar="N", help="Instruments per region.")
    ] = 300,
    pace: Annotated[
        float, typer.Option(min=0, metavar="SECONDS", help="Seconds between days' ingestion.")
    ] = 0.4,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the demo database and say how to use it.")
    ] = (False),
    name: Annotated[
        str, typer.Option(metavar="NAME", help="The demo database (reset each run).")
    ] = ("prometheus_demo"),
) -> None:
    """Ingest several market days for two regions and watch runs complete by themselves."""
    from rich.console import Console
    from rich.live import Live

    from prometheus.demo import DemoOptions, run_demo
    from prometheus.logs import configure_logging

    cli = state(ctx)
    configure_logging("WARNING")  # the live view is the output; warnings still show
    settings = cli.resolve_database()
    options = DemoOptions(
        days=days, instruments=instruments, pace_s=pace, keep=keep, database_name=name
    )
    console = Console()
    with Live(console=console, refresh_per_second=8) as live:
        result = run_demo(settings, options, progress=lambda runs: live.update(_view(runs)))
    _summary(console, result, keep=keep)


def _view(runs: Sequence[Run]) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="engine runs (live)", min_width=60)
    for column in ("as_of_date", "region", "phase", "attempts"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.as_of_date.isoformat(),
            run.region,
            Text(str(run.phase), style=PHASE_STYLE[run.phase]),
            str(run.attempts),
        )
    counts = Counter(str(r.phase) for r in runs)
    line = ", ".join(f"{phase}: {n}" for phase, n in sorted(counts.items()))
    return Group(table, Text(line or "waiting for the first ingestion...", style="dim"))


def _summary(console: Console, result: DemoResult, *, keep: bool) -> None:
    from rich.table import Table

    console.line()
    console.print(
        f"[bold]{result.runs_completed} of {result.runs_expected} runs COMPLETED[/] in "
        f"{result.elapsed_s}s; from the last dataset's commit to COMPLETED: "
        f"p50 {result.latency_p50_ms} ms, p99 {result.latency_p99_ms} ms"
    )
    if result.book_run is not None:
        book = Table(
            title=f"top of the book, {result.book_run.as_of_date} {result.book_run.region}"
        )
        for column in ("symbol", "instrument_id", "weight"):
            book.add_column(column)
        for line in result.book:
            book.add_row(line.symbol, line.instrument_id, f"{line.weight:.2%}")
        console.print(book)
    if keep:  # plain print: a command to copy must never be wrapped
        print(
            "The demo database is kept. Point the CLI at it with:\n"
            f"  export PROMETHEUS_DATABASE_URL='{redact_urls(result.database_url)}'\n"
            "  prometheus runs list\n"
            "(a password in the URL is shown as ***: put yours in its place)"
        )
