"""``prometheus bench``: latency, throughput and ingestion overhead, on scratch databases."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from prometheus.cli.render import Format, render

app = typer.Typer(
    help="Benchmarks on a scratch database (never on real data).", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


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
