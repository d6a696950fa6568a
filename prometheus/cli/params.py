"""What operators type: dates, regions, phases, durations, and the options every command
shares (``--as-of``, ``--region``).

Parsers raise ``typer.BadParameter``, which the CLI reports as bad usage (exit 2). A
region is checked twice: its shape when parsed, then, once the settings are known, that
it maps to an exchange (SPEC section 3: an unknown region is bad input everywhere, a
filter included). Use ``AsOf``, ``Region`` and ``RegionFilter`` for new commands, so
they get the same checks.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated

import typer

from prometheus.calendar import TradingCalendar
from prometheus.cli.context import state
from prometheus.durations import parse_duration
from prometheus.errors import InputError
from prometheus.pipeline.phases import Phase, parse_phase

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REGION = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def date_param(text: str) -> date:
    try:
        if _DATE.match(text.strip()):
            return date.fromisoformat(text.strip())
    except ValueError:
        pass
    raise typer.BadParameter(f"invalid date {text!r}: expected YYYY-MM-DD")


def region_param(text: str) -> str:
    region = text.strip().upper()
    if not _REGION.match(region):
        raise typer.BadParameter(f"invalid region {text!r}: expected letters like US or EU")
    return region


def known_region(ctx: typer.Context, region: str | None) -> str | None:
    """The region, if it maps to an exchange in this process's settings (the region map
    only: the calendar library is not loaded for this)."""
    if region is None or ctx.resilient_parsing:
        return region
    try:
        TradingCalendar(state(ctx).settings.region_exchanges).exchange(region)
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from None
    return region


def known_regions(ctx: typer.Context, regions: list[str] | None) -> list[str] | None:
    """``known_region`` for an option given several times."""
    for region in regions or []:
        known_region(ctx, region)
    return regions


def phase_param(text: str) -> Phase:
    try:
        return parse_phase(text)
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from None


def duration_param(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from None


def log_level_param(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"invalid log level {text!r}: expected one of {', '.join(LOG_LEVELS)}"
        )
    return level


AsOf = Annotated[
    date,
    typer.Option("--as-of", parser=date_param, metavar="YYYY-MM-DD", help="The market date."),
]
Region = Annotated[
    str,
    typer.Option(
        "--region",
        parser=region_param,
        callback=known_region,
        metavar="REGION",
        help="A region of PROMETHEUS_REGION_EXCHANGES, such as US.",
    ),
]
RegionFilter = Annotated[
    str | None,
    typer.Option(
        "--region",
        parser=region_param,
        callback=known_region,
        metavar="REGION",
        help="Only this region.",
    ),
]
Regions = Annotated[
    list[str],
    typer.Option(
        "--region",
        parser=region_param,
        callback=known_regions,
        metavar="REGION",
        help="A region of PROMETHEUS_REGION_EXCHANGES (repeat the option for more).",
        show_default=False,
    ),
]
DateFilter = Annotated[
    date | None,
    typer.Option("--as-of", parser=date_param, metavar="YYYY-MM-DD", help="Only this date."),
]
