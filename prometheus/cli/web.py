"""``prometheus web``: the operations console (see prometheus.web)."""

from __future__ import annotations

from typing import Annotated

import typer

from prometheus.cli.context import state


def web(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on (0.0.0.0: every one).")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(metavar="PORT", help="Port to listen on (0: any free one).", min=0, max=65535),
    ] = 8080,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Refuse every action, even with a login.")
    ] = False,
    root_path: Annotated[
        str,
        typer.Option(
            metavar="PATH", help="Path prefix a reverse proxy serves it under (e.g. /ops)."
        ),
    ] = "",
) -> None:
    """Serve the live operations console (read-only unless PROMETHEUS_WEB_USER and
    PROMETHEUS_WEB_PASSWORD are set)."""
    # Imported here: the rest of the CLI never loads Starlette, Jinja2 or uvicorn.
    from prometheus.web.server import serve

    cli = state(ctx)
    cli.engine()  # the database resolved (embedded if unset) and its schema up to date
    serve(cli.settings, host=host, port=port, read_only=read_only, root_path=root_path)
