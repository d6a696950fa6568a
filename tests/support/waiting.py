"""Deadlines, not sleeps: poll a predicate and, on timeout, say what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Return the first truthy value of ``probe()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)
        last = probe()
    return last


def waiting_on_a_run(db_url: str, application_name: str) -> bool:
    """A wait for a run's phase (``prometheus.orchestration.waiting``) has LISTENed and read
    the row: its backend is idle after that read. From then on only a notification, or
    its poll, can end the wait: what a test changes afterwards, it changes under the wait."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return row is not None and row[0] == "idle" and "FROM engine_runs" in row[1]
