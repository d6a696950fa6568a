"""``prometheus db``: apply and inspect schema migrations."""

from __future__ import annotations

import typer

from prometheus.cli.context import command_group, state
from prometheus.cli.output import ResultFormat, ResultFormatOption, note, result
from prometheus.cli.render import Column, Format, FormatOption, clock, render

app = command_group("Schema migrations (sql/schema, sql/triggers).")


@app.command()
def upgrade(ctx: typer.Context, fmt: ResultFormatOption = ResultFormat.TEXT) -> None:
    """Apply missing migration files, one transaction each, under an advisory lock."""
    from prometheus.db import migrate

    cli = state(ctx)
    engine = cli.engine(upgraded=False)
    applied = migrate.upgrade(engine)
    for name in applied:
        note(f"applied {name}")
    database = cli.settings.redacted_dsn()
    line = f"database {database} is up to date ({len(applied)} file(s) applied)"
    result(line, {"database": database, "applied": applied}, fmt)


@app.command()
def status(
    ctx: typer.Context,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List applied and pending migration files; exit 1 if any is pending or changed."""
    from prometheus.db import migrate

    engine = state(ctx).engine(upgraded=False)
    rows = migrate.status(engine)
    render(
        [{"name": r.name, "state": str(r.state), "applied_at": r.applied_at} for r in rows],
        ["name", "state", "applied_at"],
        fmt,
        table=[Column("name", squeeze=True), Column("state"), Column("applied_at", show=clock)],
    )
    if any(r.state is not migrate.MigrationState.APPLIED for r in rows):
        raise typer.Exit(1)
