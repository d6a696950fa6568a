"""What every command shares: the settings, and the engine built once they are known.

Nothing is built before a command asks: the root callback also runs for
``prometheus runs list --help``, which needs neither settings, logging nor a database
driver. A command pays for what it uses when it first calls ``state(ctx)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from prometheus.cli.output import note
from prometheus.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from prometheus.db.embedded import EmbeddedServer


@dataclass
class CliState:
    database_url: str | None = field(repr=False)  # --database-url, if given
    log_level: str
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)
    _logging: bool = False

    @property
    def settings(self) -> Settings:
        """The environment and the root's flags, read (and checked) on first use."""
        if self._settings is None:
            self._settings = Settings.from_process_env(database_url=self.database_url)
        return self._settings

    def start(self) -> None:
        """Log at ``--log-level`` on stderr, once per process run."""
        if not self._logging:
            from prometheus.logs import configure_logging

            configure_logging(self.log_level)
            self._logging = True

    @property
    def actor(self) -> str:
        """Overrides are audited with the operator's OS user."""
        return f"cli:{self.settings.os_user}"

    def resolve_database(self) -> Settings:
        """Settings with a database URL: the configured one, or the embedded server's,
        said on stderr in one plain line (it is not a fault, and not production)."""
        from prometheus.db.embedded import with_database

        self._settings = with_database(self.settings, announce=_say_embedded)
        return self._settings

    def engine(self, *, upgraded: bool = True) -> Engine:
        """The engine; by default only once the schema is known to be up to date."""
        from prometheus.db.connect import make_engine
        from prometheus.db.migrate import require_upgraded

        if self._engine is None:
            url = self.resolve_database().database_url
            assert url is not None
            self._engine = make_engine(url, application_name="prometheus-cli", pool_size=2)
        if upgraded:
            require_upgraded(self._engine)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _say_embedded(server: EmbeddedServer) -> None:
    starting = "" if server.running else "starting it, a few seconds; "
    note(
        f"prometheus: using the embedded PostgreSQL in {server.pgdata} "
        f"({starting}PROMETHEUS_DATABASE_URL names another server)"
    )


def command_group(help: str, *, name: str | None = None) -> typer.Typer:
    """A group of commands as every group here is built: help when called bare, plain
    click help (no rich import, no ``<bool>`` after flags, ``[default: ...]`` kept as
    text rather than read as markup), no pretty tracebacks (they print locals, and a
    local may hold the DSN)."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        add_completion=False,
    )


def state(ctx: typer.Context) -> CliState:
    """The CLI state, logging started: every command's first call."""
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState), "the root callback sets the CLI state"
    obj.start()
    return obj
