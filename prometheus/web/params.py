"""Query parameters of the console's pages, checked: a bad one is a 400 page saying which,
never a 500."""

from __future__ import annotations

from datetime import date

from starlette.exceptions import HTTPException
from starlette.requests import Request

from prometheus.calendar import TradingCalendar
from prometheus.errors import InputError
from prometheus.pipeline.phases import parse_phase
from prometheus.web.reads import RunFilters


def run_filters(request: Request, calendar: TradingCalendar) -> RunFilters:
    """The runs list's filters; InputError (shown on the page) for a bad phase, region or
    date."""
    params = request.query_params
    phase = parse_phase(params["phase"]) if params.get("phase") else None
    region = params.get("region", "").strip().upper() or None
    if region is not None:
        calendar.exchange(region)  # UnknownRegion is an InputError
    return RunFilters(
        phase=phase,
        region=region,
        date_from=date_param(params.get("from")),
        date_to=date_param(params.get("to")),
    )


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def date_param(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError(f"expected a date as YYYY-MM-DD, got {raw!r}") from None
