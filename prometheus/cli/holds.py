"""``prometheus runs hold | release | holds``: stop runs from advancing, and let them go.

Registered on the ``runs`` group (cli/runs.py). Who may hold what, and what a hold does,
is ``pipeline.holds``' and the database's; here, the options and the words.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prometheus.cli.context import state
from prometheus.cli.output import ResultFormat, ResultFormatOption, note, result
from prometheus.cli.params import Region, RegionFilter, date_param, phase_param
from prometheus.cli.render import Column, Format, FormatOption, age, one_line, render
from prometheus.errors import InputError
from prometheus.pipeline.phases import Phase

if TYPE_CHECKING:
    from prometheus.pipeline.holds import Hold, HoldScope

HoldReason = Annotated[
    str,
    typer.Option("--reason", metavar="TEXT", help="Why (written to the hold's record)."),
]
HoldPhase = Annotated[
    Phase | None,
    typer.Option(
        "--phase",
        parser=phase_param,
        metavar="PHASE",
        help="Only runs in this phase, whose task would run next (UNIVERSES_DONE holds the "
        "books)  [default: every phase]",
        show_default=False,
    ),
]
FromDate = Annotated[
    date | None,
    typer.Option(
        "--from",
        parser=date_param,
        metavar="YYYY-MM-DD",
        help="Only runs dated on or after this day.",
    ),
]
ToDate = Annotated[
    date | None,
    typer.Option(
        "--to", parser=date_param, metavar="YYYY-MM-DD", help="Only runs dated on or before it."
    ),
]

HOLD_COLUMNS = [
    "hold_id",
    "region",
    "phase",
    "from_date",
    "to_date",
    "runs_held",
    "held_by",
    "held_at",
    "reason",
    "released_by",
    "released_at",
    "release_reason",
]
HOLD_TABLE = [
    Column("hold_id", "id"),
    Column("region"),
    Column("phase"),
    Column("from_date", "from"),
    Column("to_date", "to"),
    Column("runs_held", "runs"),
    Column("held_at", "held", age),
    Column("held_by", "by", squeeze=True),
    Column("reason", squeeze=True, show=one_line),
]


def hold(
    ctx: typer.Context,
    region: Region,
    reason: HoldReason,
    phase: HoldPhase = None,
    from_date: FromDate = None,
    to_date: ToDate = None,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Stop the region's runs (one phase, a range of dates) from advancing until
    released. Nothing claims a held run: the reactor, advance, advance-all, the seed's
    scripts, the orchestrator helpers. A phase already running finishes. Holding what is
    held already changes nothing."""
    from prometheus.pipeline.holds import HoldScope, place_hold

    cli = state(ctx)
    scope = HoldScope(region, phase, from_date, to_date)
    placed, created = place_hold(cli.engine(), scope, actor=cli.actor, reason=reason)
    if not created:
        note(f"prometheus: {placed.describe()} already holds exactly that (since {placed.held_at})")
    verb = "holds" if created else "already holds"
    line = f"{placed.describe()} {verb} {placed.runs_held} active run(s)"
    result(line, {**hold_record(placed), "created": created}, fmt)


def release(
    ctx: typer.Context,
    reason: HoldReason,
    hold_ids: Annotated[
        list[int] | None,
        typer.Argument(
            metavar="[HOLD_ID]...",
            help="The holds to release (`prometheus runs holds` lists them).",
            show_default=False,
        ),
    ] = None,
    region: RegionFilter = None,
    phase: HoldPhase = None,
    from_date: FromDate = None,
    to_date: ToDate = None,
    fmt: ResultFormatOption = ResultFormat.TEXT,
) -> None:
    """Release holds by id, or the hold placed with the same --region, --phase, --from
    and --to. The reactors are woken at once: held runs that are due advance."""
    from prometheus.pipeline.holds import HoldScope, release_holds

    cli = state(ctx)
    scope: HoldScope | None = None
    if region is not None:
        scope = HoldScope(region, phase, from_date, to_date)
    elif phase is not None or from_date is not None or to_date is not None:
        raise InputError("--phase, --from and --to go with --region")
    released = release_holds(
        cli.engine(), actor=cli.actor, reason=reason, hold_ids=hold_ids or [], scope=scope
    )
    line = "released " + "; ".join(h.describe() for h in released)
    record = {
        "hold_ids": [h.hold_id for h in released],
        "released": [hold_record(h) for h in released],
    }
    result(line, record, fmt)


def holds_command(
    ctx: typer.Context, region: RegionFilter = None, fmt: FormatOption = Format.TABLE
) -> None:
    """Active holds, oldest first, with how many active runs each holds now."""
    from prometheus.pipeline.holds import active_holds

    holds = active_holds(state(ctx).engine(), region=region)
    render([hold_record(h) for h in holds], HOLD_COLUMNS, fmt, table=HOLD_TABLE)


def hold_record(hold: Hold) -> dict[str, Any]:
    """A hold as one flat record (its scope's fields first)."""
    scope: HoldScope = hold.scope
    return {
        "hold_id": hold.hold_id,
        "region": scope.region,
        "phase": scope.phase,
        "from_date": scope.from_date,
        "to_date": scope.to_date,
        "runs_held": hold.runs_held,
        "held_by": hold.held_by,
        "held_at": hold.held_at,
        "reason": hold.reason,
        "released_by": hold.released_by,
        "released_at": hold.released_at,
        "release_reason": hold.release_reason,
    }
