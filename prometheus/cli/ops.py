"""Operator commands on the root: ``prometheus check`` and ``prometheus calendar``.

``check`` speaks the monitoring dialect cron and Nagios understand: exit 0 and one
summary line when all is well, exit 1 and one line per problem otherwise (SPEC section 5).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prometheus.calendar import TradingCalendar
from prometheus.cli.context import command_group, state
from prometheus.cli.params import Region, date_param, duration_param
from prometheus.cli.render import Column, Format, FormatOption, render, time_of_day
from prometheus.errors import CheckFailed, InputError
from prometheus.pipeline.trading_days import calendar_today

if TYPE_CHECKING:
    from prometheus.checks import CheckReport

app = command_group("Operator commands.")


class CheckFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _duration_option(flag: str, default: str, what: str) -> Any:
    """A duration flag: 45s, 15m, 2h, 1d or plain seconds. Its Python default is None
    (typer would run a timedelta default through the text parser); ``default`` is the
    policy's, as shown in --help."""
    return typer.Option(
        flag, parser=duration_param, metavar="DURATION", show_default=default, help=what
    )


@app.command()
def check(
    ctx: typer.Context,
    stuck_after: Annotated[
        list[str] | None,
        typer.Option(
            "--stuck-after",
            metavar="[PHASE=]DURATION",
            show_default="2h",
            help="A workable phase unchanged this long is stuck; PHASE=DURATION sets one "
            "phase's limit (repeatable).",
        ),
    ] = None,
    window: Annotated[
        timedelta | None,
        _duration_option("--window", "24h", "Count runs that turned FAILED this recently."),
    ] = None,
    max_failures: Annotated[
        int | None,
        typer.Option(
            "--max-failures",
            min=0,
            metavar="N",
            show_default="0",
            help="Failures within --window tolerated.",
        ),
    ] = None,
    data_late_after: Annotated[
        timedelta | None,
        _duration_option(
            "--data-late-after",
            "4h",
            "WAITING_FOR_DATA this long after the session close is late data.",
        ),
    ] = None,
    reactor_silent_after: Annotated[
        timedelta | None,
        _duration_option(
            "--reactor-silent-after",
            "2m",
            "No reactor heartbeat this recent means the reactor is silent.",
        ),
    ] = None,
    require_reactor: Annotated[
        bool,
        typer.Option(
            "--require-reactor",
            help="A missing reactor is a problem even if none heartbeated in the last day.",
        ),
    ] = False,
    max_notify_queue: Annotated[
        float | None,
        typer.Option(
            "--max-notify-queue",
            metavar="FRACTION",
            show_default="0.5",
            help="pg_notification_queue_usage() above this is a problem (0 to below 1).",
        ),
    ] = None,
    max_hold_age: Annotated[
        timedelta | None,
        _duration_option(
            "--max-hold-age", "24h", "A hold placed this long ago and not released is stale."
        ),
    ] = None,
    fmt: Annotated[
        CheckFormat,
        typer.Option("--format", metavar="[text|json]", help="Text lines or one JSON object."),
    ] = CheckFormat.TEXT,
) -> None:
    """Monitoring for cron and Nagios: exit 1 and one line per problem, else 0 and a summary.

    Problems: stuck runs, late data, failures over the window, a silent reactor, a reactor
    whose listener cannot hear, a filling NOTIFY queue, regressed ingestion batches,
    waiting runs in a region that requires no datasets, and holds left in place too long
    (a held run is not stuck: its hold is reported instead).
    """
    from prometheus.checks import (
        DATA_LATE_AFTER_DEFAULT,
        MAX_FAILURES_DEFAULT,
        MAX_HOLD_AGE_DEFAULT,
        MAX_NOTIFY_QUEUE_DEFAULT,
        REACTOR_SILENT_AFTER_DEFAULT,
        WINDOW_DEFAULT,
        CheckPolicy,
        find_problems,
        parse_stuck_after,
        stuck_limits,
    )

    cli = state(ctx)
    default, by_phase = stuck_limits([parse_stuck_after(text) for text in stuck_after or []])
    policy = CheckPolicy(
        stuck_after=default,
        stuck_after_by_phase=by_phase,
        window=_given(window, WINDOW_DEFAULT),
        max_failures=MAX_FAILURES_DEFAULT if max_failures is None else max_failures,
        data_late_after=_given(data_late_after, DATA_LATE_AFTER_DEFAULT),
        reactor_silent_after=_given(reactor_silent_after, REACTOR_SILENT_AFTER_DEFAULT),
        require_reactor=require_reactor,
        max_notify_queue=MAX_NOTIFY_QUEUE_DEFAULT if max_notify_queue is None else max_notify_queue,
        max_hold_age=_given(max_hold_age, MAX_HOLD_AGE_DEFAULT),
    )
    calendar = TradingCalendar(cli.settings.region_exchanges)
    report = find_problems(cli.engine(), policy, calendar=calendar)
    if fmt is CheckFormat.JSON:
        sys.stdout.write(json.dumps(report_json(report), indent=2) + "\n")
    elif report.ok:
        print(report.summary)
    else:
        for problem in report.problems:
            print(f"{problem.kind}: {problem.message}")
    if not report.ok:
        raise CheckFailed(report.summary)


def _given(value: timedelta | None, default: timedelta) -> timedelta:
    return default if value is None else value


def report_json(report: CheckReport) -> dict[str, Any]:
    """The report for machines: durations as seconds (keys ending ``_s``), times ISO 8601."""
    policy = report.policy
    return {
        "status": "ok" if report.ok else "problems",
        "summary": report.summary,
        "checked_at": report.checked_at.isoformat(),
        "runs_by_phase": {str(p): n for p, n in report.runs_by_phase.items()},
        "problems_by_kind": {str(k): n for k, n in report.problems_by_kind.items()},
        "failed_in_window": report.failed_in_window,
        "live_reactors": report.live_reactors,
        "notify_queue_usage": report.notify_queue_usage,
        "active_holds": report.active_holds,
        "runs_held": report.runs_held,
        "policy": {
            "stuck_after_s": policy.stuck_after.total_seconds(),
            "stuck_after_by_phase_s": {
                str(p): d.total_seconds() for p, d in policy.stuck_after_by_phase.items()
            },
            "window_s": policy.window.total_seconds(),
            "max_failures": policy.max_failures,
            "data_late_after_s": policy.data_late_after.total_seconds(),
            "reactor_silent_after_s": policy.reactor_silent_after.total_seconds(),
            "require_reactor": policy.require_reactor,
            "max_notify_queue": policy.max_notify_queue,
            "max_hold_age_s": policy.max_hold_age.total_seconds(),
        },
        "problems": [
            {"kind": str(p.kind), "message": p.message, **_jsonable(asdict(p))}
            for p in report.problems
        ],
    }


def _jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, timedelta):
            out[f"{key}_s"] = value.total_seconds()
        else:
            out[key] = _json_value(value)
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _jsonable(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


SESSION_COLUMNS = ["date", "open", "close", "half_day"]
SESSION_TABLE = [
    Column("date"),
    Column("open", show=time_of_day),
    Column("close", show=time_of_day),
    Column("half_day"),
]


@app.command("calendar")
def calendar_command(
    ctx: typer.Context,
    region: Region,
    start: Annotated[
        date | None,
        typer.Option(
            "--from",
            parser=date_param,
            metavar="YYYY-MM-DD",
            show_default="the month's first",
            help="First day.",
        ),
    ] = None,
    end: Annotated[
        date | None,
        typer.Option(
            "--to",
            parser=date_param,
            metavar="YYYY-MM-DD",
            show_default="the month's last",
            help="Last day.",
        ),
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Trading sessions of a region's exchange: open and close (UTC), half days.

    By default the current month; --from or --to alone extends to that month's end or start.
    """
    calendar = TradingCalendar(state(ctx).settings.region_exchanges)
    exchange = calendar.exchange(region)
    first, last = session_range(start, end, today=calendar_today())
    sessions = calendar.sessions(region, first, last)
    if not sessions:
        print(f"prometheus: no {exchange} sessions from {first} to {last}", file=sys.stderr)
    render(
        [
            {"date": s.date, "open": s.open, "close": s.close, "half_day": s.half_day}
            for s in sessions
        ],
        SESSION_COLUMNS,
        fmt,
        table=SESSION_TABLE,
        title=f"{region} sessions on {exchange}, {first}..{last} (UTC)",
    )


def session_range(start: date | None, end: date | None, *, today: date) -> tuple[date, date]:
    """A missing bound is the start or end of the other bound's month (of today's, when
    both are missing), so ``--from`` alone lists the rest of that month."""
    first = start or (end or today).replace(day=1)
    last = end or _month_end(start or today)
    if first > last:
        raise InputError(f"--from {first} is after --to {last}")
    return first, last


def _month_end(day: date) -> date:
    following = day.replace(day=28) + timedelta(days=4)  # always in the next month
    return following - timedelta(days=following.day)
