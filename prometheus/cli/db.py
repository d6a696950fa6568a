"""``prometheus db``: apply and inspect schema migrations; the embedded server's lifecycle."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from prometheus.cli.context import command_group, state
from prometheus.cli.output import ResultFormat, ResultFormatOption, note, result
from prometheus.cli.render import Column, Format, FormatOption, clock, render

if TYPE_CHECKING:
    from prometheus.db.embedded import EmbeddedServer

app = command_group("Schema migrations, and the embedded server's lifecycle.")


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
    """List applied and pending migration files; exit 1 if any is pending or changed.

    Without a database URL, first says whether the embedded server runs, and where; one
    that is not running is not started (nor listed): `prometheus db stop` stays stopped.
    """
    from prometheus.db import migrate
    from prometheus.db.embedded import embedded_server

    cli = state(ctx)
    if cli.settings.database_url is None:
        server = embedded_server(cli.settings.embedded_home)
        for line in embedded_lines(server):
            (print if fmt is Format.TABLE else note)(line)
        if not server.running:
            return
    engine = cli.engine(upgraded=False)
    rows = migrate.status(engine)
    render(
        [{"name": r.name, "state": str(r.state), "applied_at": r.applied_at} for r in rows],
        ["name", "state", "applied_at"],
        fmt,
        table=[Column("name", squeeze=True), Column("state"), Column("applied_at", show=clock)],
    )
    if any(r.state is not migrate.MigrationState.APPLIED for r in rows):
        raise typer.Exit(1)


@app.command()
def stop(ctx: typer.Context, fmt: ResultFormatOption = ResultFormat.TEXT) -> None:
    """Stop the embedded server (under PROMETHEUS_HOME); the next command starts it again.

    A configured database (PROMETHEUS_DATABASE_URL, --database-url) is never touched.
    """
    from prometheus.db.embedded import stop_embedded_server

    cli = state(ctx)
    before = stop_embedded_server(cli.settings.embedded_home)
    if cli.settings.database_url is not None:
        note("the configured database is not the embedded server: it was not touched")
    verb = f"stopped (pid {before.pid})" if before.running else "was not running"
    record = {"pgdata": str(before.pgdata), "stopped": before.running, "pid": before.pid}
    result(f"embedded PostgreSQL in {before.pgdata} {verb}", record, fmt)


def embedded_lines(server: EmbeddedServer) -> list[str]:
    """Whether the embedded server runs, and where (its URL has no password)."""
    if server.running:
        return [
            f"embedded PostgreSQL: running (pid {server.pid}), data in {server.pgdata}",
            f"  at {server.url}",
            "  `prometheus db stop` stops it",
        ]
    if server.initialized:
        return [
            f"embedded PostgreSQL: not running, data in {server.pgdata}",
            "  the next command that needs a database starts it",
        ]
    return [f"embedded PostgreSQL: not created yet (it will live in {server.pgdata})"]
