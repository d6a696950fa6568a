"""The overrides the console offers on a run's page: each one's name, wording, and the
``pipeline`` functions that decide whether it would be accepted and that perform it (the
console decides nothing itself); and the small form an action posts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request

from prometheus.pipeline import holds, overrides
from prometheus.pipeline.state import Run

MAX_FORM_BYTES = 16 * 1024  # a reason and a token; anything larger is not our form


@dataclass(frozen=True)
class Action:
    """An override the console offers; ``allowed`` and ``perform`` are overrides'."""

    name: str
    title: str
    explain: str
    allowed: Callable[[Run], bool]
    perform: Callable[..., Run]


ACTIONS = {
    action.name: action
    for action in (
        Action(
            "retry",
            "Retry",
            "Send the FAILED run back to the phase it failed in, with its attempts reset; "
            "a reactor then takes it from there.",
            overrides.can_retry,
            overrides.retry,
        ),
        Action(
            "cancel",
            "Cancel",
            "Move the run to FAILED now: nothing advances it until someone retries it.",
            overrides.can_cancel,
            overrides.cancel,
        ),
        Action(
            "hold",
            "Hold",
            "Stop this run (its region and date, every phase) from advancing until the hold "
            "is released: no reactor, advance or orchestrator claims it. A phase running now "
            "finishes; the next one does not start.",
            holds.can_hold,
            holds.hold_run,
        ),
        Action(
            "release",
            "Release",
            "Release every hold that covers this run, each with the whole of its scope (the "
            "run page lists them): the runs they held advance at once.",
            holds.can_release,
            holds.release_run,
        ),
    )
}


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, read up to MAX_FORM_BYTES (413 beyond); {} for any other body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "form too large")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
