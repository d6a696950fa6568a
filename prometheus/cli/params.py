"""Parsers for what operators type: dates, regions, phases, durations.

Each raises ``typer.BadParameter``, which the CLI reports as bad usage (exit 2).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import typer

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
