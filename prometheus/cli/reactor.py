"""``prometheus reactor``: the long-running service (see prometheus.orchestration)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from prometheus.cli.context import state
from prometheus.config import (
    CONCURRENCY_DEFAULT,
    METRICS_HOST_DEFAULT,
    SWEEP_INTERVAL_SECONDS_DEFAULT,
)


def reactor(
    ctx: typer.Context,
    sweep_interval: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            metavar="SECONDS",
            show_default=False,
            help="Seconds between sweeps.  [default: PROMETHEUS_SWEEP_INTERVAL, else "
            f"{SWEEP_INTERVAL_SECONDS_DEFAULT:g}]",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            metavar="N",
            show_default=False,
            help="Runs advanced at once.  [default: PROMETHEUS_CONCURRENCY, else "
            f"{CONCURRENCY_DEFAULT}]",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT", help="Serve /healthz and /metrics on this port (0: any free one)."
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            metavar="ADDRESS", help="Address for --metrics-port (0.0.0.0: every interface)."
        ),
    ] = METRICS_HOST_DEFAULT,
) -> None:
    """LISTEN for notifications and advance runs at once; sweep as a backstop."""
    from prometheus.orchestration.engine_daemon import serve

    cli = state(ctx)
    settings = cli.settings.from_overrides(
        sweep_interval=None if sweep_interval is None else timedelta(seconds=sweep_interval),
        concurrency=concurrency,
        metrics_port=metrics_port,
    )
    code = serve(settings, metrics_host=metrics_host)
    if code:
        raise typer.Exit(code)
