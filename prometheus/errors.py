"""The exception hierarchy. Each class carries the exit code the CLI turns it into."""

from __future__ import annotations


class PrometheusError(Exception):
    """A runtime failure: the database is down, a phase failed, a check found problems."""

    exit_code = 1


class InputError(PrometheusError):
    """Bad usage or bad input: a malformed date, an unknown phase or region, a bad CSV."""

    exit_code = 2


class IllegalTransition(InputError):
    """The state machine refuses this phase change (raised by Python or by the database)."""


class RunNotFound(InputError):
    """No run exists for that date and region."""


class RunBusy(PrometheusError):
    """Another process holds the run (a phase is running); an override does not queue."""


class NotUpgraded(PrometheusError):
    """The database schema is missing or behind: run `prometheus db upgrade`."""


class DatabaseAhead(PrometheusError):
    """The database has migrations this code does not have (a newer prometheus upgraded
    it): no command works on a schema it was not written for."""


class StandbyServer(PrometheusError):
    """The server cannot write: a standby (in recovery), not the primary."""


class MigrationError(PrometheusError):
    """A migration file is inconsistent with what the database recorded."""


class CheckFailed(PrometheusError):
    """`prometheus check` found problems."""


class NotATradingDay(InputError):
    """The region's exchange does not trade that day, or its calendar cannot tell (a date
    outside the calendar's range): a run or prices for it need ``--force``."""


def first_line(exc: BaseException) -> str:
    """An error as one line for a log event or stderr: the driver's own message when a
    library wrapped it (SQLAlchemy's wrapper repeats the statement and its parameters)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
