"""``prometheus datasets``: what each region requires before its runs can start.

A run turns DATA_READY when every dataset its region requires has a COMPLETE batch for
its date. A region that requires nothing never turns ready by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from prometheus.cli.context import command_group, state
from prometheus.cli.output import ResultFormat, ResultFormatOption, note, result
from prometheus.cli.params import Region, RegionFilter
from prometheus.cli.render import Format, FormatOption, as_record, render

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = command_group("Datasets each region requires (region_datasets).")

Datasets = Annotated[
    list[str], typer.Argument(metavar="DATASET...", help="Dataset names.", show_default=False)
]


@app.command()
def require(
    ctx: typer.Context,
    region: Region,
    datasets: Datasets,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Require DATASETS for REGION (safe to repeat). Give them all in one command: waiting
    runs whose required datasets are all in turn DATA_READY at once."""
    from prometheus.ingestion import require_datasets

    engine = state(ctx).engine()
    added = require_datasets(engine, region, datasets)
    _say(engine, region, "added", added, fmt)


@app.command()
def drop(
    ctx: typer.Context,
    region: Region,
    datasets: Datasets,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Stop requiring DATASETS for REGION; waiting runs that now have all theirs turn ready."""
    from prometheus.ingestion import check_dataset_name, drop_datasets

    datasets = [check_dataset_name(d) for d in datasets]
    engine = state(ctx).engine()
    dropped = drop_datasets(engine, region, datasets)
    if missing := sorted(set(datasets) - set(dropped)):
        note(f"{region} did not require: {', '.join(missing)}")
    _say(engine, region, "dropped", dropped, fmt)


@app.command("list")
def list_command(
    ctx: typer.Context,
    region: RegionFilter = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Every region's required datasets."""
    from prometheus.ingestion import region_datasets

    rows = region_datasets(state(ctx).engine(), region)
    render([as_record(r) for r in rows], ["region", "dataset"], fmt)


def _say(engine: Engine, region: str, change: str, changed: list[str], fmt: ResultFormat) -> None:
    """What the region requires now, after the change."""
    from prometheus.ingestion import region_datasets

    now = [r.dataset for r in region_datasets(engine, region)]
    line = f"{region} requires: {', '.join(now) or '(nothing)'} ({len(changed)} {change})"
    result(line, {"region": region, "requires": now, change: changed}, fmt)
