"""``prometheus backfill``: every market session of a range gets its run; runs are redone
on request (``--reprocess``); ``--wait`` follows the range until it settles.

The plan and its rule are ``pipeline.backfill``'s; here, the options, the words, and the
watching.
"""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prometheus.calendar import TradingCalendar
from prometheus.cli.context import state
from prometheus.cli.output import Progress, ResultFormat, ResultFormatOption, note, result
from prometheus.cli.params import Regions, date_param, duration_param
from prometheus.errors import InputError, PrometheusError
from prometheus.pipeline.trading_days import calendar_today

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from prometheus.pipeline.backfill import BackfillPlan, RangeProgress

POLL_S = 0.5
LOG_EVERY_S = 10.0  # off a terminal (a log file, a pipe), a progress line this often
LISTED = 20  # runs to reset listed one by one on stderr; beyond, a count


def backfill(
    ctx: typer.Context,
    start: Annotated[
        date,
        typer.Option("--from", parser=date_param, metavar="YYYY-MM-DD", help="First day."),
    ],
    end: Annotated[
        date, typer.Option("--to", parser=date_param, metavar="YYYY-MM-DD", help="Last day.")
    ],
    regions: Regions,
    reprocess: Annotated[
        str,
        typer.Option(
            "--reprocess",
            metavar="[none|failed|all]",
            help="Also redo FAILED runs (failed), or FAILED and COMPLETED ones (all), from "
            "their first phase.",
        ),
    ] = "none",
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why: required with --reprocess, written to each reset run's audit trail. "
            "The same reason again resets nothing twice.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the range on stderr until every run is COMPLETED or FAILED; exit 1 "
            "if any is FAILED.",
        ),
    ] = False,
    timeout: Annotated[
        timedelta | None,
        typer.Option(
            "--timeout",
            parser=duration_param,
            metavar="DURATION",
            help="With --wait: give up (exit 1) after this long.  [default: no limit]",
            show_default=False,
        ),
    ] = None,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Create the runs missing for every session of the range (each starts when its data
    is complete), and with --reprocess redo FAILED or COMPLETED ones. Safe to repeat."""
    from prometheus.pipeline.backfill import BackfillRequest, Reprocess, backfill

    if timeout is not None and not wait:
        raise InputError("--timeout goes with --wait")
    if wait and dry_run:
        raise InputError("--dry-run writes nothing: there is nothing to --wait for")
    try:
        mode = Reprocess(reprocess.strip().lower())
    except ValueError:
        raise InputError(f"--reprocess {reprocess!r}: expected none, failed or all") from None
    cli = state(ctx)
    request = BackfillRequest(start, end, tuple(dict.fromkeys(regions)), mode, reason)
    engine = cli.engine()
    plan = backfill(
        engine,
        TradingCalendar(cli.settings.region_exchanges),
        request,
        actor=cli.actor,
        today=calendar_today(),
        dry_run=dry_run,
    )
    _explain(plan, dry_run=dry_run)
    line = _line(plan, dry_run=dry_run)
    record = _record(plan, dry_run=dry_run)
    if not wait:
        result(line, record, fmt)
        return
    settled = _wait(engine, plan, timeout)
    completed, failed = settled.completed, settled.failed
    record["settled"] = {"completed": completed, "failed": failed}
    result(f"{line}; settled: {completed} COMPLETED, {failed} FAILED", record, fmt)
    if failed:
        raise typer.Exit(1)


def _explain(plan: BackfillPlan, *, dry_run: bool) -> None:
    """Per region, on stderr: what is created (a date range), reset (each run, up to a
    point) and left, by why."""
    from prometheus.pipeline.backfill import Action

    verbs = {Action.CREATE: "create", Action.RESET: "reset", Action.LEAVE: "leave"}
    if not dry_run:
        verbs = {Action.CREATE: "created", Action.RESET: "reset", Action.LEAVE: "left"}
    for region in plan.request.regions:
        runs = [p for p in plan.runs if p.region == region]
        if not runs:
            note(f"{region}: no session from {plan.request.start} to {plan.request.end}")
            continue
        created = [p.as_of_date for p in runs if p.action is Action.CREATE]
        if created:
            note(
                f"{region}: {verbs[Action.CREATE]} {len(created)} run(s), "
                f"{min(created)}..{max(created)}"
            )
        resets = [p for p in runs if p.action is Action.RESET]
        for planned in resets[:LISTED]:
            note(
                f"{region}: {verbs[Action.RESET]} run {planned.run_id} {planned.as_of_date} "
                f"({planned.why})"
            )
        if len(resets) > LISTED:
            note(f"{region}: {verbs[Action.RESET]} {len(resets) - LISTED} more run(s)")
        left: dict[str, int] = {}
        for planned in runs:
            if planned.action is Action.LEAVE:
                left[planned.why] = left.get(planned.why, 0) + 1
        for why, count in sorted(left.items()):
            note(f"{region}: {verbs[Action.LEAVE]} {count} run(s): {why}")


def _line(plan: BackfillPlan, *, dry_run: bool) -> str:
    from prometheus.pipeline.backfill import Action

    request = plan.request
    counts = plan.counts
    what = (
        f"{counts[Action.CREATE]} created, {counts[Action.RESET]} reset, "
        f"{counts[Action.LEAVE]} left"
    )
    if dry_run:
        what = (
            f"would create {counts[Action.CREATE]}, reset {counts[Action.RESET]}, leave "
            f"{counts[Action.LEAVE]} (dry run: nothing written)"
        )
    regions = ", ".join(request.regions)
    return f"backfill {request.start}..{request.end} {regions}: {len(plan.runs)} session(s), {what}"


def _record(plan: BackfillPlan, *, dry_run: bool) -> dict[str, Any]:
    from prometheus.pipeline.backfill import Action

    request = plan.request
    counts = plan.counts
    return {
        "from": request.start,
        "to": request.end,
        "regions": list(request.regions),
        "reprocess": request.reprocess,
        "dry_run": dry_run,
        "sessions": len(plan.runs),
        "created": counts[Action.CREATE],
        "reset": counts[Action.RESET],
        "left": counts[Action.LEAVE],
        "runs": [
            {
                "as_of_date": p.as_of_date,
                "region": p.region,
                "action": p.action,
                "run_id": p.run_id,
                "phase": p.phase,
                "why": p.why,
            }
            for p in plan.runs
        ],
    }


def _wait(engine: Engine, plan: BackfillPlan, timeout: timedelta | None) -> RangeProgress:
    """Poll the range until every run is COMPLETED or FAILED: progress on stderr (redrawn
    on a terminal, a line every LOG_EVERY_S otherwise); PrometheusError after ``timeout``."""
    from prometheus.pipeline.backfill import range_progress

    began = time.monotonic()
    first = range_progress(engine, plan)
    logged = began
    with Progress("backfill", total=first.total) as progress:
        while True:
            now = range_progress(engine, plan)
            elapsed = time.monotonic() - began
            text = _progress_text(now, first, elapsed)
            progress.done = now.settled
            progress.step(text)
            if not sys.stderr.isatty() and time.monotonic() - logged >= LOG_EVERY_S:
                note(f"backfill {now.settled}/{now.total}: {text}")
                logged = time.monotonic()
            if now.settled == now.total:
                return now
            if timeout is not None and elapsed > timeout.total_seconds():
                raise PrometheusError(
                    f"the backfill's runs did not settle within {timeout}: "
                    f"{now.settled}/{now.total} settled, {text}"
                )
            time.sleep(POLL_S)


def _progress_text(now: RangeProgress, first: RangeProgress, elapsed: float) -> str:
    rate = (now.settled - first.settled) / elapsed if elapsed > 0 else 0.0
    left = now.total - now.settled
    eta = f"ETA {left / rate:.0f}s" if rate > 0 else "ETA unknown"
    parts = [f"{now.failed} FAILED", f"{rate:.1f} runs/s", eta]
    if now.waiting:
        parts.append(f"{now.waiting} waiting for data")
    if now.held:
        parts.append(f"{now.held} held (`prometheus runs holds`)")
    return ", ".join(parts)
