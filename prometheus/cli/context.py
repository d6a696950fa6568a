"""What every command shares: the settings, and the engine built once they are known."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.embedded import with_database
from prometheus.db.migrate import require_upgraded


@dataclass
class CliState:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        """Overrides are audited with the operator's OS user."""
        return f"cli:{self.settings.os_user}"

    def resolve_database(self) -> Settings:
        """Settings with a database URL: the configured one, or the embedded server's."""
        self.settings = with_database(self.settings)
        return self.settings

    def engine(self, *, upgraded: bool = True) -> Engine:
        """The engine; by default only once the schema is known to be up to date."""
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


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState), "the root callback sets the CLI state"
    return obj
