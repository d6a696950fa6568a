"""The fully migrated schema as readable SQL: what ``sql/schema.sql`` holds.

    python -m tests.support.schema_dump > sql/schema.sql

builds a scratch database with every migration on a test server (as the suite finds
one: PROMETHEUS_TEST_DATABASE_URL, else a throw-away local cluster) and prints its
``pg_dump --schema-only``, cleaned: no session settings but the one a restore needs, no
per-object banners, no migration bookkeeping. Run it after adding a migration;
tests/integration/test_schema_file.py fails while the file is stale.
"""

from __future__ import annotations

import re
import subprocess
import sys

import psycopg

from prometheus.config import libpq_url
from prometheus.db.databases import scratch_database
from tests.support.servers import postgres_server, server_tool

HEADER = """\
-- The current schema of Prometheus engine runs, whole: every migration in sql/schema/
-- and sql/triggers/ applied, as pg_dump --schema-only shows it (cleaned). For reading;
-- not a migration (`prometheus db upgrade` applies the numbered files only, and records
-- them). After adding a migration, regenerate it:
--
--     python -m tests.support.schema_dump > sql/schema.sql
--
-- tests/integration/test_schema_file.py fails while this file and the migrations differ.
"""

#: A dump's banners: one before each object, and the dump's own first and last.
_BANNER = re.compile(r"^--\n-- (Name|Type|PostgreSQL database dump)[^\n]*\n--\n", re.MULTILINE)
#: Lines that say nothing about the schema: session settings (but the one a restore
#: needs: SQL functions are created before the tables they read), the versions that
#: dumped it, and psql's \restrict guard (pg_dump 15.14 on), whose key changes per dump.
_NOISE = re.compile(
    r"^(SET (?!check_function_bodies)|SELECT pg_catalog\.set_config|\\(un)?restrict |-- Dumped )"
)


def pg_dump(url: str) -> str:
    """The database's schema, cleaned, without the migrations' bookkeeping table."""
    with psycopg.connect(libpq_url(url)) as conn:
        version = conn.info.server_version
    tool = server_tool("pg_dump", version)
    if tool is None:
        raise LookupError(f"no pg_dump of the server's major version ({version // 10_000})")
    dumped = subprocess.run(
        [
            str(tool),
            "--schema-only",
            "--no-owner",
            "--exclude-table=prometheus_migrations",
            "--dbname",
            libpq_url(url),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return clean(dumped)


def clean(dump: str) -> str:
    kept = [line for line in _BANNER.sub("", dump).splitlines() if not _NOISE.match(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip() + "\n"


def main() -> None:
    with postgres_server() as server, scratch_database(server, prefix="prometheus_schema") as url:
        sys.stdout.write(HEADER + "\n" + pg_dump(url))


if __name__ == "__main__":
    main()
