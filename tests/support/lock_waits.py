"""Readiness signals for concurrency tests: who is waiting on a lock, in this database only
(other databases on the same server may belong to other tests running at the same time)."""

from __future__ import annotations

from typing import Any

import psycopg


def lock_waiters(conn: psycopg.Connection[Any], lock: str | None = None) -> int:
    """Backends of ``conn``'s database waiting on a lock of type ``lock`` (``advisory``,
    ``transactionid``, ``tuple``...; any type when None)."""
    # Inside a transaction pg_stat_activity is a snapshot taken at first use: refresh it.
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND (%(lock)s::text IS NULL OR wait_event = %(lock)s)",
        {"lock": lock},
    ).fetchone()
    assert row is not None
    return int(row[0])
