"""``prometheus demo``: the product end to end, shown live (see prometheus.demo).

The live view is progress, on stderr while it is a terminal; the summary is the result,
on stdout (``--format json``: one object).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from prometheus.cli.context import state
from prometheus.cli.output import ResultFormat, ResultFormatOption, jsonable, note, result
from prometheus.cli.render import Format, render
from prometheus.config import redact_urls

if TYPE_CHECKING:
    from prometheus.demo import DemoResult

DEMO_DATABASE = "prometheus_demo"


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
    ] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Drop the database an earlier --keep left, first.")
    ] = False,
    name: Annotated[
        str, typer.Option(metavar="NAME", help="The demo's database (prometheus_demo*).")
    ] = DEMO_DATABASE,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Ingest several market days for two regions and watch runs complete by themselves.

    A database kept by an earlier `demo --keep` is refused (exit 2) unless --fresh.
    """
    from prometheus.demo import DemoOptions, run_demo
    from prometheus.demo.view import LiveView
    from prometheus.logs import configure_logging

    cli = state(ctx)
    configure_logging("WARNING")  # the live view is the show; warnings still show
    embedded = cli.settings.database_url is None
    settings = cli.resolve_database()
    options = DemoOptions(
        days=days,
        instruments=instruments,
        pace_s=pace,
        keep=keep,
        fresh=fresh,
        database_name=name,
    )
    with LiveView() as view:
        outcome = run_demo(settings, options, progress=view.update)
    print_summary(outcome, keep=keep, fmt=fmt)
    if not keep:
        note(
            "The demo's database is dropped again; `prometheus demo --keep` keeps one for "
            "`runs list`, `check` and the rest."
        )
    if embedded:
        note(
            "The embedded PostgreSQL keeps running for the next command; "
            "`prometheus db stop` stops it."
        )


def print_summary(outcome: DemoResult, *, keep: bool, fmt: ResultFormat) -> None:
    url = redact_urls(outcome.database_url)
    line = (
        f"{outcome.runs_completed} of {outcome.runs_expected} runs COMPLETED in "
        f"{outcome.elapsed_s:.1f}s ({outcome.setup_s:.1f}s of set-up); from each day's last "
        f"dataset to COMPLETED: p50 {outcome.latency_p50_ms:g} ms, "
        f"p99 {outcome.latency_p99_ms:g} ms"
    )
    record = {**jsonable(outcome), "database_url": url if keep else None}
    result(line, record, fmt)
    if fmt is ResultFormat.JSON:
        return
    if outcome.book_run is not None:
        run = outcome.book_run
        print()
        render(
            [{**jsonable(b), "weight": f"{b.weight:.2%}"} for b in outcome.book],
            ["symbol", "instrument_id", "weight"],
            Format.TABLE,
            title=f"top of the book, {run.as_of_date} {run.region}:",
        )
    if keep:  # plain lines: a command to copy must never be wrapped
        print()
        print("The demo database is kept. Point the CLI at it with:")
        print(f"  export PROMETHEUS_DATABASE_URL='{url}'")
        print("  prometheus runs list")
        if url != outcome.database_url:
            print("(the password in the URL is shown as ***: put yours in its place)")
