"""``prometheus reactor``: the long-running service (see prometheus.orchestration)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from prometheus.cli.context import state
from prometheus.orchestration.engine_daemon import serve


def reactor(
    ctx: typer.Context,
    sweep_interval: Annotated[
        float | None, typer.Option(help="Seconds between sweeps [default: 60].", min=0.01)
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Runs advanced at once [default: 4].", min=1, max=256)
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /healthz and /metrics on this port (0: any).")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address for --metrics-port.")] = "0.0.0.0",
) -> None:
    """LISTEN for notifications and advance runs at once; sweep as a backstop."""
    cli = state(ctx)
    settings = cli.settings.from_overrides(
        sweep_interval=None if sweep_interval is None else timedelta(seconds=sweep_interval),
        concurrency=concurrency,
        metrics_port=metrics_port,
    )
    code = serve(settings, metrics_host=metrics_host)
    if code:
        raise typer.Exit(code)
