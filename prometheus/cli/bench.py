"""``prometheus bench``: latency, throughput and ingestion overhead, on scratch databases."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from prometheus.cli.context import command_group, state
from prometheus.cli.output import Progress
from prometheus.cli.render import Format, render
from prometheus.config import Settings

app = command_group("Benchmarks on a scratch database (never on real data).")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _quiet_database(ctx: typer.Context) -> Settings:
    """The database to measure on; logs only from warnings up, so the numbers stand out."""
    from prometheus.logs import configure_logging

    cli = state(ctx)
    configure_logging("WARNING")
    return cli.resolve_database()


def report(result: Mapping[str, Any], *, as_json: bool, title: str) -> None:
    """One JSON object with --json; otherwise a readable two-column table."""
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        return
    render(
        [{"metric": k, "value": v} for k, v in result.items()],
        ["metric", "value"],
        Format.TABLE,
        title=title,
    )


@app.command()
def latency(
    ctx: typer.Context,
    runs: Annotated[
        int, typer.Option(min=1, metavar="N", help="Measured runs (after 20 warm-up).")
    ] = 500,
    as_json: JsonFlag = False,
) -> None:
    """Notification path: DATA_READY statement -> first task start, and -> COMPLETED."""
    from prometheus.bench.latency import measure_latency

    settings = _quiet_database(ctx)
    with Progress("bench latency") as progress:
        result = measure_latency(settings, runs=runs, progress=progress.step)
    report(result, as_json=as_json, title="bench latency")


@app.command()
def throughput(
    ctx: typer.Context,
    runs: Annotated[
        int, typer.Option(min=1, metavar="N", help="Runs made DATA_READY at once.")
    ] = 3000,
    reactors: Annotated[
        list[int] | None,
        typer.Option(
            metavar="N", show_default=False, help="Reactor processes (repeat).  [default: 1 and 3]"
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, metavar="N", help="--concurrency of each reactor.")
    ] = 4,
    as_json: JsonFlag = False,
) -> None:
    """No-op phases: runs/s and transitions/s until every run is COMPLETED."""
    from prometheus.bench.throughput import measure_throughput

    settings = _quiet_database(ctx)
    with Progress("bench throughput") as progress:
        results = measure_throughput(
            settings,
            runs=runs,
            reactor_counts=reactors or [1, 3],
            concurrency=concurrency,
            progress=progress.step,
        )
    if as_json:  # the largest reactor count at the top level, every count under "results"
        sys.stdout.write(json.dumps({**results[-1], "results": results}) + "\n")
        return
    columns = list(results[0])
    render(results, columns, Format.TABLE, title="bench throughput")


@app.command()
def ingest(
    ctx: typer.Context,
    rows: Annotated[
        int, typer.Option(min=1, metavar="N", help="Price rows loaded each way.")
    ] = 1_000_000,
    batch: Annotated[
        int, typer.Option(min=1, metavar="N", help="Rows per batch (one date each).")
    ] = 10_000,
    rounds: Annotated[
        int, typer.Option(min=1, metavar="N", help="Interleaved rounds (ABBA).")
    ] = 50,
    as_json: JsonFlag = False,
) -> None:
    """COPY price batches with the project's triggers vs without: rows/s and overhead."""
    from prometheus.bench.ingest import measure_ingest

    settings = _quiet_database(ctx)
    with Progress("bench ingest") as progress:
        result = measure_ingest(
            settings, rows=rows, batch=batch, rounds=rounds, progress=progress.step
        )
    report(result, as_json=as_json, title="bench ingest")


@app.command()
def sweep(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option(min=1, metavar="N", help="Active runs, none due.")] = 10_000,
    as_json: JsonFlag = False,
) -> None:
    """The sweep's and an idle worker's cost with many active runs and nothing due."""
    from prometheus.bench.sweep import measure_sweep

    settings = _quiet_database(ctx)
    with Progress("bench sweep") as progress:
        result = measure_sweep(settings, runs=runs, progress=progress.step)
    report(result, as_json=as_json, title="bench sweep")


@app.command()
def startup(
    ctx: typer.Context,
    repeat: Annotated[
        int, typer.Option(min=1, metavar="N", help="Timed starts of each command.")
    ] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Wall time of fresh `prometheus` processes: --help, --version, and `runs list`
    against a scratch database on the configured server."""
    from prometheus.bench.startup import measure_startup

    settings = _quiet_database(ctx)
    with Progress("bench startup") as progress:
        result = measure_startup(settings, repeat=repeat, progress=progress.step)
    report(result, as_json=as_json, title="bench startup")


@app.command()
def web(
    ctx: typer.Context,
    sessions: Annotated[
        int, typer.Option(min=1, metavar="N", help="Sessions per region (252: a year).")
    ] = 252,
    requests: Annotated[
        int, typer.Option(min=1, metavar="N", help="Measured requests per page.")
    ] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The console's pages (overview of a year of sessions, a run, a runs page) over HTTP."""
    from prometheus.bench.web import measure_web

    settings = _quiet_database(ctx)
    with Progress("bench web") as progress:
        result = measure_web(settings, sessions=sessions, requests=requests, progress=progress.step)
    report(result, as_json=as_json, title="bench web")
