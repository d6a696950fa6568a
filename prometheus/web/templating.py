"""The Jinja2 environment of the console's templates (``prometheus/web/templates``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup

from prometheus.checks import human
from prometheus.pipeline.phases import Phase


def environment() -> jinja2.Environment:
    """The console's templates: autoescaped whatever their names (database text is text),
    strict about undefined names, with the filters and globals the pages use."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("prometheus.web", "templates"),
        autoescape=True,  # every template, whatever its name: database text is text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ts"] = _timestamp
    env.filters["human"] = _human
    env.globals["url"] = _url
    env.globals["phases"] = list(Phase)
    # Constants marked safe once (enum values, no markup in them): the grid uses them in
    # every cell, and escaping a Markup is free where escaping a str is not.
    env.globals["phase_class"] = {p: Markup(f"phase-{p.lower()}") for p in Phase}
    env.globals["phase_name"] = {p: Markup(p.value) for p in Phase}
    return env


@jinja2.pass_context
def _url(context: Any, name: str, /, query: dict[str, Any] | None = None, **params: Any) -> str:
    """A route's path (under the app's root path) with an optional query string."""
    path: str = context["request"].url_for(name, **params).path
    kept = {k: v for k, v in (query or {}).items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def _timestamp(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _human(delta: timedelta | float | None) -> str:
    if delta is None:
        return ""
    if isinstance(delta, int | float):
        return f"{delta:.2f}s" if delta < 60 else human(timedelta(seconds=delta))
    if delta < timedelta(seconds=10):
        return f"{delta.total_seconds():.2f}s"
    return human(delta)
