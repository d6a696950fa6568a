"""structlog setup: JSON lines off a terminal, readable lines on one, always on stderr.

Event names are ``noun.verb_past`` (``phase.completed``, ``listener.reconnect_scheduled``):
alerting keys on them, so renaming one is an interface change.

structlog is imported when a line is first logged, not when a module asks for its
logger: importing it costs about a tenth of a second (it loads rich for tracebacks), and
a command that logs nothing (``prometheus runs list``) should not pay for it.
``configure_logging`` is applied then too, or at once if structlog is already loaded.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import structlog
    from structlog.typing import FilteringBoundLogger

_wanted: tuple[str, bool | None] | None = None  # configure_logging's, until applied


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """Configure once per process; ``json=None`` chooses by whether stderr is a terminal."""
    global _wanted
    _wanted = (level, json)
    if "structlog" in sys.modules:
        _apply()


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger for ``name``; structlog is loaded by its first line."""
    return cast("FilteringBoundLogger", _Lazy(name))


class _Lazy:
    """Stands for ``structlog.get_logger(name)`` until a method is used."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import structlog

            _apply()
            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attr)


def _apply() -> None:
    global _wanted
    if _wanted is None:
        return
    import structlog

    (level, json), _wanted = _wanted, None
    use_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*args: object) -> structlog.PrintLogger:
    """Whatever ``sys.stderr`` is when the line is written, not when logging was set up:
    a test's captured stream is closed afterwards, and a daemon may have it replaced."""
    import structlog

    return structlog.PrintLogger(sys.stderr)
