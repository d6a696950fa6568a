"""Schema upgrades from ``sql/schema`` and ``sql/triggers`` (SPEC section 3).

Files are numbered across both folders (``0001_…`` to ``NNNN_…``, gaps allowed) and
applied in that order, one transaction per file. Each applied file is recorded with its
checksum.

Two concurrent upgrades are safe: every transaction of an upgrade takes the migration
advisory lock for itself (``pg_advisory_xact_lock``) and decides under it, from what is
recorded then, whether its file is still to apply. No lock outlives a transaction, so
an upgrade works through a transaction pooler (PgBouncer ``pool_mode = transaction``),
where a session lock would stay behind on whichever server connection took it. Two
upgraders may share the work, file by file, always in order.

Everything is checked before anything is applied: an applied file that was edited (the
database would silently disagree with the code), a pending file numbered before one
already applied (it would run against a schema it was not written for), and files the
database has applied that this code does not have (a newer prometheus upgraded it: then
every command refuses, not only the upgrade).

DDL takes strong locks (ALTER TABLE engine_runs waits for every running phase, and every
claim then queues behind the waiting ALTER). So each file runs with a ``lock_timeout``:
it gives up after a few seconds, releases its place in the queue, pauses and tries again,
a bounded number of times; claims wait at most one timeout, never a phase.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import psycopg
from sqlalchemy import Connection, Engine

from prometheus.db.queries import SQL_ROOT, query
from prometheus.errors import DatabaseAhead, MigrationError, NotUpgraded
from prometheus.logs import get_logger

log = get_logger(__name__)

MIGRATION_FOLDERS = ("schema", "triggers")
_NUMBERED = re.compile(r"^(\d{4})_\w+\.sql$")


@dataclass(frozen=True)
class Migration:
    name: str  # "schema/0001_engine_runs.sql"
    number: int
    sql: str
    checksum: str


@dataclass(frozen=True)
class LockPolicy:
    """How long one try of a file may wait for its locks, how many tries, and the pause
    after the first failed try (doubled after each next one)."""

    timeout_s: float = 3.0
    attempts: int = 5
    first_pause_s: float = 1.0

    def pause_s(self, failed_tries: int) -> float:
        return float(self.first_pause_s * 2 ** (failed_tries - 1))


class MigrationState(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    CHANGED = "changed"  # applied, but the file no longer matches its checksum
    UNKNOWN = "unknown"  # applied, but this code has no such file: the database is ahead


@dataclass(frozen=True)
class MigrationStatus:
    name: str
    state: MigrationState
    applied_at: datetime | None


Applied = dict[str, tuple[str, datetime]]


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
    """Every file of this code, and every file the database applied that it lacks."""
    with engine.connect() as conn:
        applied = _applied(conn)
    migrations = discover(root)
    known = {m.name for m in migrations}
    unknown = [
        MigrationStatus(name, MigrationState.UNKNOWN, applied_at)
        for name, (_, applied_at) in applied.items()
        if name not in known
    ]
    rows = [_status_of(m, applied) for m in migrations] + unknown
    return sorted(rows, key=lambda s: (Path(s.name).name, s.name))


def upgrade(engine: Engine, root: Path = SQL_ROOT, *, locks: LockPolicy | None = None) -> list[str]:
    """Apply pending files; return their names. Safe to run from many processes at once.
    Nothing is applied unless every file checks out (see the module's docstring)."""
    locks = locks or LockPolicy()
    migrations = discover(root)
    applied_now: list[str] = []
    with engine.connect() as conn:
        with conn.begin():
            conn.execute(query("migration_lock"))
            conn.execute(query("create_migrations_table"))
            _refuse_inconsistent(migrations, _applied(conn))
        for migration in migrations:
            if _apply(conn, migrations, migration, locks):
                applied_now.append(migration.name)
    return applied_now


def require_upgraded(engine: Engine, root: Path = SQL_ROOT) -> None:
    """Refuse to work on a database whose schema is missing, behind, edited or ahead."""
    rows = status(engine, root)
    _refuse_ahead([r.name for r in rows if r.state is MigrationState.UNKNOWN])
    not_ready = [r for r in rows if r.state is not MigrationState.APPLIED]
    if not_ready:
        raise NotUpgraded(
            f"the database is not upgraded ({len(not_ready)} migration(s) pending or changed): "
            "run `prometheus db upgrade`"
        )


def _refuse_inconsistent(migrations: Sequence[Migration], applied: Applied) -> None:
    known = {m.name for m in migrations}
    _refuse_ahead([name for name in sorted(applied) if name not in known])
    for migration in migrations:
        if _status_of(migration, applied).state is MigrationState.CHANGED:
            raise MigrationError(
                f"{migration.name} was edited after it was applied; add a new numbered file instead"
            )
    done = [m for m in migrations if m.name in applied]
    if not done:
        return
    last = done[-1]  # migrations are in number order
    early = [m.name for m in migrations if m.name not in applied and m.number < last.number]
    if early:
        raise MigrationError(
            f"{', '.join(early)} is pending but {last.name} is applied already: a new file "
            "must be numbered after the last applied one (renumber it)"
        )


def _refuse_ahead(unknown: Sequence[str]) -> None:
    if unknown:
        raise DatabaseAhead(
            f"the database has migration(s) this prometheus does not have ({', '.join(unknown)}):"
            " it was upgraded by a newer version; use that version, or check the database URL"
        )


def _apply(
    conn: Connection, migrations: Sequence[Migration], migration: Migration, locks: LockPolicy
) -> bool:
    """One file in one transaction, if it is still pending once this transaction holds the
    migration lock (another upgrader may have applied it meanwhile); each try of the file
    bounded by ``lock_timeout``. True if this call applied it."""
    attempt = 0
    while True:
        attempt += 1
        try:
            with conn.begin():
                conn.execute(query("migration_lock"))
                applied = _applied(conn)
                _refuse_inconsistent(migrations, applied)  # as it is now, under the lock
                if migration.name in applied:
                    return False
                timeout = f"{max(1, round(locks.timeout_s * 1000))}ms"
                conn.execute(query("migration_lock_timeout"), {"timeout": timeout})
                conn.connection.dbapi_connection.cursor().execute(migration.sql)  # type: ignore[union-attr]  # the raw psycopg cursor runs a whole file
                conn.execute(
                    query("record_migration"),
                    {"name": migration.name, "checksum": migration.checksum},
                )
            return True
        except psycopg.errors.LockNotAvailable:
            if attempt == locks.attempts:
                raise MigrationError(
                    f"{migration.name}: its locks were not free within {locks.timeout_s:g}s, "
                    f"{locks.attempts} tries (a long phase or an open transaction holds a "
                    "table it changes); nothing of it applied: run the upgrade again later"
                ) from None
            pause = locks.pause_s(attempt)
            log.warning(
                "migration.lock_unavailable",
                file=migration.name,
                attempt=attempt,
                timeout_s=locks.timeout_s,
                retry_in_s=pause,
            )
            time.sleep(pause)


def _applied(conn: Connection) -> Applied:
    if not conn.execute(query("migrations_table_exists")).scalar_one():
        return {}
    rows = conn.execute(query("applied_migrations")).all()
    return {row.name: (row.checksum, row.applied_at) for row in rows}


def _status_of(migration: Migration, applied: Applied) -> MigrationStatus:
    if migration.name not in applied:
        return MigrationStatus(migration.name, MigrationState.PENDING, None)
    checksum, applied_at = applied[migration.name]
    state = MigrationState.APPLIED if checksum == migration.checksum else MigrationState.CHANGED
    return MigrationStatus(migration.name, state, applied_at)
