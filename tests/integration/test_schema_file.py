"""sql/schema.sql is the schema the migrations make, so one file shows today's tables whole.

A database built from the file and one built by the migrations must dump alike
(``pg_dump --schema-only`` of the server's own version, cleaned the same way). After
adding a migration: ``python -m tests.support.schema_dump > sql/schema.sql``.
"""

from __future__ import annotations

import difflib

import psycopg
import pytest

from prometheus.config import libpq_url
from prometheus.db.migrate import discover
from prometheus.db.queries import SQL_ROOT
from tests.support.schema_dump import pg_dump
from tests.support.servers import server_tool

SCHEMA_FILE = SQL_ROOT / "schema.sql"


def test_schema_sql_is_what_the_migrations_make(db_url: str, empty_db_url: str) -> None:
    with psycopg.connect(libpq_url(empty_db_url), autocommit=True) as conn:
        if server_tool("pg_dump", conn.info.server_version) is None:
            pytest.skip("no pg_dump of the test server's major version on this machine")
        conn.execute(SCHEMA_FILE.read_bytes())
    from_file, migrated = pg_dump(empty_db_url), pg_dump(db_url)
    diff = "".join(
        difflib.unified_diff(
            from_file.splitlines(keepends=True),
            migrated.splitlines(keepends=True),
            "sql/schema.sql",
            "the migrations",
        )
    )
    assert not diff, (
        "sql/schema.sql is stale; regenerate it with "
        f"`python -m tests.support.schema_dump > sql/schema.sql`:\n{diff}"
    )


def test_schema_sql_is_not_a_migration() -> None:
    assert SCHEMA_FILE.exists()
    assert "schema.sql" not in {m.name.split("/")[-1] for m in discover()}
