"""``prometheus runs``: inspect runs, ask for transitions, and audited overrides."""

from __future__ import annotations

import json
import sys
import textwrap
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prometheus.calendar import TradingCalendar
from prometheus.cli.context import command_group, state
from prometheus.cli.holds import hold, hold_record, holds_command, release
from prometheus.cli.output import (
    Progress,
    ResultFormat,
    ResultFormatOption,
    jsonable,
    note,
    result,
    warn,
)
from prometheus.cli.params import AsOf, Region, RegionFilter, date_param, phase_param
from prometheus.cli.render import (
    Column,
    Format,
    FormatOption,
    age,
    as_record,
    clock,
    one_line,
    output_width,
    record_lines,
    render,
    table_lines,
)
from prometheus.errors import PrometheusError, RunNotFound
from prometheus.pipeline.phases import Phase

if TYPE_CHECKING:
    from prometheus.pipeline.runs import Run, Step

app = command_group("Inspect and move engine runs.")

Reason = Annotated[
    str, typer.Option("--reason", metavar="TEXT", help="Why (written to the audit trail).")
]
PhaseFilter = Annotated[
    Phase | None, typer.Option(parser=phase_param, metavar="PHASE", help="Only this phase.")
]

RUN_COLUMNS = [
    "run_id",
    "as_of_date",
    "region",
    "phase",
    "attempts",
    "next_attempt_at",
    "phase_changed_at",
    "updated_at",
    "last_error",
    "hold_id",
]
EVENT_COLUMNS = ["event_id", "at", "kind", "from_phase", "to_phase", "actor", "detail"]
#: `runs list` at 80 columns: times as ages, updated_at left to csv/json, the error cut.
RUN_TABLE = [
    Column("run_id", "id"),
    Column("as_of_date", "as_of"),
    Column("region"),
    Column("phase"),
    Column("attempts", "tries"),
    Column("next_attempt_at", "next", age),
    Column("phase_changed_at", "changed", age),
    Column("last_error", squeeze=True, show=one_line),
]
#: `runs show`'s events: when, what, to which phase, who; each event's detail (an error,
#: a reason) follows on lines of its own, whole.
EVENT_TABLE = [
    Column("at", show=clock),
    Column("kind"),
    Column("from_phase", "from"),
    Column("to_phase", "to"),
    Column("actor", squeeze=True),
]
#: `runs show`'s run, a field per line and every value whole.
RUN_FIELDS = [
    c for c in RUN_COLUMNS if c not in ("run_id", "as_of_date", "region", "phase", "hold_id")
]
RUN_FIELDS.insert(RUN_FIELDS.index("phase_changed_at"), "created_at")

app.command()(hold)
app.command()(release)
app.command("holds")(holds_command)


@app.command()
def ensure(
    ctx: typer.Context,
    as_of: AsOf,
    region: Region,
    data_ready: Annotated[bool, typer.Option("--data-ready", help="Declare the data in.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Allow a day the region's exchange does not trade, or outside its calendar.",
        ),
    ] = False,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Create the run if missing (safe to repeat); --data-ready moves it to DATA_READY.

    A holiday or weekend of the region's exchange, or a date outside its calendar, is
    refused (exit 2) unless --force.
    """
    from prometheus.pipeline.state import ensure_session_run

    cli = state(ctx)
    run = ensure_session_run(
        cli.engine,
        TradingCalendar(cli.settings.region_exchanges),
        as_of,
        region,
        data_ready=data_ready,
        force=force,
        actor=cli.actor,
        doing="ensure the run",
        on_forced=warn,
    )
    _say(run, fmt)


@app.command()
def advance(
    ctx: typer.Context, as_of: AsOf, region: Region, fmt: ResultFormatOption = ResultFormat.TEXT
) -> None:
    """Advance one run by one step (exit 1 if the step failed)."""
    from prometheus.pipeline.runs import Outcome
    from prometheus.pipeline.state import advance_run, find_run

    cli = state(ctx)
    engine = cli.engine()
    run = _require(find_run(engine, as_of, region), as_of, region)
    step = advance_run(engine, run, settings=cli.settings, actor=cli.actor)
    if step.outcome is Outcome.BUSY:
        raise PrometheusError(f"run {run.run_id} is being advanced by another process")
    if step.outcome is Outcome.HELD:
        note(f"prometheus: run {run.run_id} is held: `prometheus runs show` says by what")
    result(_step_line(step), _step_record(step), fmt)
    if step.attempt_failed:
        raise typer.Exit(1)


@app.command("advance-all")
def advance_all_command(ctx: typer.Context, fmt: ResultFormatOption = ResultFormat.TEXT) -> None:
    """Advance every run with work due by one step (for cron; exit 1 if a step failed).

    One line per run stepped on stderr; the count (or every step, with --format json) is
    the result.
    """
    from prometheus.pipeline.state import advance_all

    cli = state(ctx)
    with Progress("advancing runs") as progress:

        def stepped(step: Step, due: int) -> None:
            if step.run is not None:
                progress.note(_step_line(step))
            progress.total = due
            progress.advance()

        steps = advance_all(cli.engine(), settings=cli.settings, actor=cli.actor, progress=stepped)
    failed = [s for s in steps if s.attempt_failed]
    line = f"advanced {len(steps)} run(s), {len(failed)} failed attempt(s)"
    record = {"runs": len(steps), "failed_attempts": len(failed)}
    result(line, {**record, "steps": [_step_record(s) for s in steps]}, fmt)
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_command(
    ctx: typer.Context,
    phase: PhaseFilter = None,
    region: RegionFilter = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List runs, oldest first; a run a hold covers shows HELD after its phase."""
    from prometheus.pipeline.reads import list_runs

    runs = list_runs(state(ctx).engine(), phase=phase, region=region)
    records = [as_record(r) for r in runs]
    if fmt is Format.TABLE:  # csv and json carry hold_id; a table marks the phase
        for record in records:
            if record["hold_id"] is not None:
                record["phase"] = f"{record['phase']} HELD"
    render(records, RUN_COLUMNS, fmt, table=RUN_TABLE)


@app.command()
def show(ctx: typer.Context, as_of: AsOf, region: Region, fmt: FormatOption = Format.TABLE) -> None:
    """One run, the holds that keep it from advancing, and its audit trail."""
    from prometheus.pipeline.holds import holds_of_run
    from prometheus.pipeline.reads import find_run, run_events

    engine = state(ctx).engine()
    run = _require(find_run(engine, as_of, region), as_of, region)
    events = [as_record(e) for e in run_events(engine, run.run_id)]
    held = holds_of_run(engine, run.run_id)
    holds = [hold_record(h) for h in held]
    if fmt is Format.JSON:
        record = {**as_record(run), "holds": holds, "events": events}
        sys.stdout.write(json.dumps(jsonable(record), indent=2) + "\n")
    elif fmt is Format.CSV:
        render([as_record(run)], RUN_COLUMNS, fmt)  # its hold_id says whether it is held
        render(events, EVENT_COLUMNS, fmt)
    else:
        now = datetime.now(UTC)
        mark = "  HELD" if held else ""
        print(f"run {run.run_id}  {run.as_of_date}  {run.region}  {run.phase}{mark}")
        for line in record_lines(as_record(run), RUN_FIELDS, now=now):
            print(f"  {line}")
        for h in held:
            print(f"  held by {h.describe()} ({h.held_by}, {age(h.held_at, now)}): {h.reason}")
        print()
        for line in event_lines(events, now=now, width=output_width()):
            print(line)


@app.command()
def retry(
    ctx: typer.Context,
    as_of: AsOf,
    region: Region,
    reason: Reason,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Send a FAILED run back to the phase it failed in, attempts reset."""
    from prometheus.pipeline import overrides

    cli = state(ctx)
    _say(overrides.retry(cli.engine(), as_of, region, actor=cli.actor, reason=reason), fmt)


@app.command()
def cancel(
    ctx: typer.Context,
    as_of: AsOf,
    region: Region,
    reason: Reason,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Move an active run to FAILED."""
    from prometheus.pipeline import overrides

    cli = state(ctx)
    _say(overrides.cancel(cli.engine(), as_of, region, actor=cli.actor, reason=reason), fmt)


@app.command("set-phase")
def set_phase(
    ctx: typer.Context,
    as_of: AsOf,
    region: Region,
    phase: Annotated[
        Phase, typer.Option(parser=phase_param, metavar="PHASE", help="Target phase.")
    ],
    reason: Reason,
    force: Annotated[bool, typer.Option("--force", help="Required: bypasses the rules.")] = False,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Move a run to any phase (requires --force; audited)."""
    from prometheus.pipeline import overrides

    cli = state(ctx)
    run = overrides.set_phase(
        cli.engine(), as_of, region, phase, actor=cli.actor, reason=reason, force=force
    )
    _say(run, fmt)


@app.command()
def purge(
    ctx: typer.Context,
    before: Annotated[
        date,
        typer.Option(
            "--before",
            parser=date_param,
            metavar="YYYY-MM-DD",
            help="Purge terminal runs dated before this day.",
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why (written to the purge record).")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Delete COMPLETED and FAILED runs dated before --before, with their events and
    results, and record the purge (who, why, how many). Active runs are never purged, and
    the cutoff stays out of the reactor's calendar window (the last 4 days), whose runs
    the reactor would create and run again."""
    from prometheus.pipeline.retention import purge_runs

    cli = state(ctx)
    done = purge_runs(cli.engine(), before, actor=cli.actor, reason=reason, dry_run=dry_run)
    verb = "would purge" if done.dry_run else "purged"
    suffix = " (dry run: nothing deleted)" if done.dry_run else f" (purge {done.purge_id})"
    line = (
        f"{verb} {done.runs_purged} run(s) and {done.events_purged} event(s) dated before "
        f"{done.before.isoformat()}{suffix}"
    )
    result(line, as_record(done), fmt)


def event_lines(events: list[dict[str, Any]], *, now: datetime, width: int | None) -> list[str]:
    """The audit trail as a table, each event's detail wrapped whole under its row."""
    header, *rows = table_lines(events, EVENT_TABLE, now=now, width=width)
    lines = [header]
    for row, event in zip(rows, events, strict=True):
        lines.append(row)
        if detail := event["detail"]:
            text = one_line(detail, now)
            lines += textwrap.wrap(
                text,
                width=(width or len(text) + 4) - 4,
                initial_indent="    ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
    return lines


def _require(run: Run | None, as_of: date, region: str) -> Run:
    if run is None:
        raise RunNotFound(f"no run for {as_of.isoformat()} {region}")
    return run


def _say(run: Run, fmt: ResultFormat) -> None:
    result(f"run {run.run_id} {run.as_of_date} {run.region}: {run.phase}", as_record(run), fmt)


def _step_line(step: Step) -> str:
    if step.run is None:
        return str(step.outcome)
    run = step.run
    suffix = f" ({step.error})" if step.error else ""
    return (
        f"run {run.run_id} {run.as_of_date} {run.region}: {step.outcome}, now {run.phase}{suffix}"
    )


def _step_record(step: Step) -> dict[str, Any]:
    run = as_record(step.run) if step.run is not None else None
    return {"outcome": step.outcome, "task_phase": step.phase, "error": step.error, "run": run}
