"""Schema upgrades from ``sql/schema`` and ``sql/triggers`` (SPEC section 3).

Files are numbered across both folders (``0001_…`` to ``NNNN_…``) and applied in that
order, one transaction per file, under an advisory lock so that two concurrent upgrades
are safe. Each applied file is recorded with its checksum: editing a file that was
already applied is an error, because the database would silently disagree with the code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Connection, Engine

from prometheus.db.queries import SQL_ROOT, query
from prometheus.errors import MigrationError, NotUpgraded

MIGRATION_FOLDERS = ("schema", "triggers")
_NUMBERED = re.compile(r"^(\d{4})_\w+\.sql$")


@dataclass(frozen=True)
class Migration:
    name: str  # "schema/0001_engine_runs.sql"
    number: int
    sql: str
    checksum: str


class MigrationState(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    CHANGED = "changed"  # applied, but the file no longer matches its checksum


@dataclass(frozen=True)
class MigrationStatus:
    name: str
    state: MigrationState
    applied_at: datetime | None


def discover(root: Path = SQL_ROOT) -> list[Migration]:
    """All migration files, ordered by number; a reused number is an error."""
    found: dict[int, Migration] = {}
    for folder in MIGRATION_FOLDERS:
        for path in sorted((root / folder).glob("*.sql")):
            match = _NUMBERED.match(path.name)
            if match is None:
                raise MigrationError(f"{folder}/{path.name}: migration files are NNNN_name.sql")
            number = int(match[1])
            if number in found:
                raise MigrationError(f"{folder}/{path.name}: number {number} is already used")
            data = path.read_bytes()
            found[number] = Migration(
                name=f"{folder}/{path.name}",
                number=number,
                sql=data.decode(),
                checksum=hashlib.sha256(data).hexdigest(),
            )
    return [found[n] for n in sorted(found)]


def status(engine: Engine, root: Path = SQL_ROOT) -> list[MigrationStatus]:
    with engine.connect() as conn:
        applied = _applied(conn)
    return [_status_of(m, applied) for m in discover(root)]


def upgrade(engine: Engine, root: Path = SQL_ROOT) -> list[str]:
    """Apply pending files; return their names. Safe to run from many processes at once."""
    migrations = discover(root)
    applied_now: list[str] = []
    with engine.connect() as conn:
        conn.execute(query("migration_lock"))
        conn.commit()
        try:
            with conn.begin():
                conn.execute(query("create_migrations_table"))
            applied = _applied(conn)
            conn.commit()
            for migration in migrations:
                if _status_of(migration, applied).state is MigrationState.CHANGED:
                    raise MigrationError(
                        f"{migration.name} was edited after it was applied; "
                        "add a new numbered file instead"
                    )
                if migration.name in applied:
                    continue
                with conn.begin():
                    conn.connection.dbapi_connection.cursor().execute(migration.sql)  # type: ignore[union-attr]  # the raw psycopg cursor runs a whole file
                    conn.execute(
                        query("record_migration"),
                        {"name": migration.name, "checksum": migration.checksum},
                    )
                applied_now.append(migration.name)
        finally:
            conn.rollback()
            conn.execute(query("migration_unlock"))
            conn.commit()
    return applied_now


def require_upgraded(engine: Engine, root: Path = SQL_ROOT) -> None:
    """Refuse to work on a database whose schema is missing, behind or edited."""
    not_ready = [s for s in status(engine, root) if s.state is not MigrationState.APPLIED]
    if not_ready:
        raise NotUpgraded(
            f"the database is not upgraded ({len(not_ready)} migration(s) pending or changed): "
            "run `prometheus db upgrade`"
        )


def _applied(conn: Connection) -> dict[str, tuple[str, datetime]]:
    if not conn.execute(query("migrations_table_exists")).scalar_one():
        return {}
    rows = conn.execute(query("applied_migrations")).all()
    return {row.name: (row.checksum, row.applied_at) for row in rows}


def _status_of(migration: Migration, applied: dict[str, tuple[str, datetime]]) -> MigrationStatus:
    if migration.name not in applied:
        return MigrationStatus(migration.name, MigrationState.PENDING, None)
    checksum, applied_at = applied[migration.name]
    state = MigrationState.APPLIED if checksum == migration.checksum else MigrationState.CHANGED
    return MigrationStatus(migration.name, state, applied_at)
