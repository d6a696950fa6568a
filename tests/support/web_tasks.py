"""Phase tasks for the console's tests: ``signals`` fails with an error text that is
HTML, so a page that did not escape it would run it. ``universes`` and ``books`` do
nothing (a retried run goes on to COMPLETED without market data)."""

from __future__ import annotations

from prometheus.pipeline.context import TaskContext

ERROR_HTML = '<script>document.title="pwned"</script><b>bold</b> & more'


class HtmlFailure(RuntimeError):
    """What ``signals`` raises."""


def signals(ctx: TaskContext) -> None:
    if ctx.region != "OK":
        raise HtmlFailure(ERROR_HTML)


def universes(ctx: TaskContext) -> None:
    """Nothing to build: the console's tests look at phases, not results."""


def books(ctx: TaskContext) -> None:
    """Nothing to write."""
