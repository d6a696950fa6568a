"""``prometheus ingest``: load prices and instruments, and show the batches.

A file is validated whole before anything is written: a summary line, then every
problem as ``FILE:LINE: message`` on stderr, exit 2, nothing written. The batch row
written with the prices is what moves a run to DATA_READY.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prometheus.calendar import TradingCalendar
from prometheus.cli.context import command_group, state
from prometheus.cli.output import Progress, ResultFormat, ResultFormatOption, result, warning
from prometheus.cli.params import AsOf, DateFilter, Region, RegionFilter
from prometheus.cli.render import Column, Format, FormatOption, age, as_record, render
from prometheus.pipeline.trading_days import calendar_today

app = command_group("Load ingested data; batch rows make runs DATA_READY.")

STATUS_COLUMNS = [
    "as_of_date",
    "region",
    "dataset",
    "required",
    "status",
    "row_count",
    "started_at",
    "completed_at",
    "run_phase",
]


#: `ingest status` at 80 columns: completion as an age, start time left to csv/json.
STATUS_TABLE = [
    Column("as_of_date", "as_of"),
    Column("region"),
    Column("dataset", squeeze=True),
    Column("required", "req", show=lambda value, now: "yes" if value else "no"),
    Column("status"),
    Column("row_count", "rows"),
    Column("completed_at", "completed", age),
    Column("run_phase", "run"),
]

CsvFile = Annotated[
    Path, typer.Argument(metavar="FILE.csv", help="The CSV file.", show_default=False)
]


@app.command()
def prices(
    ctx: typer.Context,
    file: CsvFile,
    as_of: AsOf,
    region: Region,
    dataset: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", show_default="prices", help="Batch name (what regions require)."
        ),
    ] = None,
    partial: Annotated[
        bool, typer.Option("--partial", help="Load the rows but leave the batch RUNNING.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Load a day the exchange does not trade, outside its calendar, or a dataset "
            "the region does not require.",
        ),
    ] = False,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Load FILE (instrument_id,open,high,low,close,volume) as the prices of one date.

    Refused (exit 2, nothing written) unless --force: a day the region's exchange does
    not trade or outside its calendar, and a dataset the region does not require.
    """
    from prometheus.ingestion import (
        PRICES_DATASET,
        check_dataset_name,
        check_prices_target,
        load_prices,
        read_prices_csv,
    )
    from prometheus.pipeline.state import find_run

    dataset = check_dataset_name(dataset or PRICES_DATASET)
    cli = state(ctx)
    with Progress(f"ingest prices {file.name}") as progress:
        progress.step("reading the file")
        rows = read_prices_csv(file)  # a missing or malformed file fails before the database
        progress.step("checking the date, region and dataset")
        engine = cli.engine()
        calendar = TradingCalendar(cli.settings.region_exchanges)
        warnings = check_prices_target(
            engine,
            calendar,
            dataset=dataset,
            as_of_date=as_of,
            region=region,
            force=force,
            today=calendar_today(),
        )
        for text in warnings:
            progress.note(warning(text))
        progress.step(f"checking and loading {len(rows.rows)} row(s)")
        record = load_prices(
            engine, rows, as_of_date=as_of, region=region, dataset=dataset, partial=partial
        )
    run = find_run(engine, as_of, region)
    after = f"run {run.run_id} is {run.phase}" if run else "no run yet"
    line = (
        f"{record.dataset} {record.as_of_date} {record.region}: {len(rows.rows)} row(s) loaded,"
        f" batch {record.status} ({record.row_count} row(s)); {after}"
    )
    loaded = {"rows_loaded": len(rows.rows), "run": as_record(run) if run else None}
    result(line, {**as_record(record), **loaded}, fmt)


@app.command()
def instruments(
    ctx: typer.Context, file: CsvFile, region: Region, fmt: ResultFormatOption = ResultFormat.TEXT
) -> None:
    """Load FILE (instrument_id,symbol) into the region's instrument master (upsert)."""
    from prometheus.ingestion import load_instruments, read_instruments_csv

    with Progress(f"ingest instruments {file.name}") as progress:
        progress.step("reading the file")
        rows = read_instruments_csv(file)
        progress.step(f"loading {len(rows.rows)} instrument(s)")
        count = load_instruments(state(ctx).engine(), rows, region=region)
    result(
        f"{region}: {count} instrument(s) loaded",
        {"region": region, "instruments_loaded": count},
        fmt,
    )


@app.command()
def status(
    ctx: typer.Context,
    as_of: DateFilter = None,
    region: RegionFilter = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most this many rows.")] = 100,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Batches, newest date first; a required dataset with no batch yet shows MISSING."""
    from prometheus.ingestion import dataset_states

    states = dataset_states(state(ctx).engine(), as_of_date=as_of, region=region, limit=limit)
    render([as_record(s) for s in states], STATUS_COLUMNS, fmt, table=STATUS_TABLE)
