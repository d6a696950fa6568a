"""The root command, its global options, and the one place that turns errors into exits.

Exit codes (SPEC section 5): 0 success; 1 a runtime failure or a failed check; 2 bad
usage or bad input. An error is one line on stderr, the DSN's password masked, never a
traceback: typer's pretty exceptions are off, as they would print locals holding the DSN.

Start-up: this module and every command module import only typer and the package's
light modules at their top; a command imports the database drivers, the calendar
library, rich's live view or the metrics client inside its function, so that
``prometheus --help`` and ``--version`` answer at once (tests/unit/test_cli_startup.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, NoReturn

import typer

from prometheus import __version__
from prometheus.cli import bench as bench_commands
from prometheus.cli import datasets as datasets_commands
from prometheus.cli import db as db_commands
from prometheus.cli import ingest as ingest_commands
from prometheus.cli import ops as ops_commands
from prometheus.cli import runs as runs_commands
from prometheus.cli.backfill import backfill
from prometheus.cli.context import CliState, command_group
from prometheus.cli.demo import demo
from prometheus.cli.params import log_level_param
from prometheus.cli.reactor import reactor
from prometheus.cli.web import web
from prometheus.config import known_database_urls, redact, shown_database_url
from prometheus.errors import PrometheusError, first_line

app = command_group(
    "Orchestration core of the daily trading engine: engine_runs, reactor, ingestion.",
    name="prometheus",
)
app.add_typer(db_commands.app, name="db")
app.add_typer(runs_commands.app, name="runs")
app.add_typer(bench_commands.app, name="bench")
app.add_typer(ingest_commands.app, name="ingest")
app.add_typer(datasets_commands.app, name="datasets")
app.add_typer(ops_commands.app)  # check, calendar: commands of the root itself
app.command()(backfill)
app.command()(reactor)
app.command()(demo)
app.command()(web)


def _version(show: bool) -> None:
    if show:
        print(f"prometheus {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="PostgreSQL URL (default: PROMETHEUS_DATABASE_URL, else the embedded server).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(parser=log_level_param, metavar="LEVEL", help="Log level for stderr.")
    ] = "INFO",
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = CliState(database_url=database_url, log_level=log_level)
    ctx.call_on_close(ctx.obj.close)


def run(argv: Sequence[str] | None = None, *, prog_name: str = "prometheus") -> int:
    """Run the CLI and return its exit code; every error becomes one line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        # Outside standalone mode, click *returns* the code of a `typer.Exit(n)` raised by
        # a command (it does not raise it): dropping the result would turn exit 1 into 0.
        result = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors and bad parameters: exit 2
        if type(exc).__name__ == "NoArgsIsHelpError":  # help is already shown (typer's test)
            return exc.exit_code
        return _fail(exc.format_message(), exc.exit_code, args)
    except typer.Abort:
        return _fail("aborted", 130, args)
    except PrometheusError as exc:
        return _fail(str(exc), exc.exit_code, args)
    except Exception as exc:  # the outermost handler: one line, never a traceback
        if _is_database_error(exc):
            from prometheus.db.sqlstate import is_standby_error, standby_error

            if is_standby_error(exc):
                return _fail(str(standby_error(shown_database_url(args))), 1, args)
            return _fail(f"database error: {first_line(exc)}", 1, args)
        return _fail(f"unexpected {type(exc).__name__}: {first_line(exc)}", 1, args)
    return result if isinstance(result, int) else 0


def main() -> NoReturn:
    sys.exit(run())


def _is_database_error(exc: Exception) -> bool:
    """A SQLAlchemy or psycopg error, asked without importing either: a library this
    process never imported cannot have raised."""
    kinds: list[type[BaseException]] = []
    if sa_errors := sys.modules.get("sqlalchemy.exc"):
        kinds.append(sa_errors.SQLAlchemyError)
    if psycopg := sys.modules.get("psycopg"):
        kinds.append(psycopg.Error)
    return isinstance(exc, tuple(kinds))


def _fail(message: str, code: int, args: Sequence[str]) -> int:
    """Our own messages are written to be read as they are (a CSV's problems, one per
    line); anything else has been cut to its first line by the caller. Passwords of the
    database URLs this process was given are masked wherever they appear."""
    text = redact(message.strip(), known_database_urls(args))
    print(f"prometheus: error: {text}", file=sys.stderr)
    return code


if __name__ == "__main__":
    main()
