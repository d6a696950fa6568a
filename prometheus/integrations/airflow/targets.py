"""Which run a task works on, who it says it is, and what it hands downstream.

``as_of_date`` and ``region`` are templated (``{{ dag_run.conf['as_of_date'] }}``,
``{{ ds }}``), so they are checked when the task executes. What no retry can fix (bad
input, a FAILED run) fails the task at once (``AirflowFailException``); a database that
is down fails it the ordinary way, and Airflow's retries apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from prometheus.errors import InputError
from prometheus.orchestration.waiting import RunFailed
from prometheus.pipeline.runs import Run


def run_key(as_of_date: str | date, region: str) -> tuple[date, str]:
    """The (as_of_date, region) a rendered template names."""
    if isinstance(as_of_date, date):
        return as_of_date, region.strip().upper()
    try:
        return date.fromisoformat(as_of_date.strip()), region.strip().upper()
    except ValueError:
        message = f"invalid as_of_date {as_of_date!r}: expected YYYY-MM-DD"
        raise AirflowFailException(message) from None


def actor(context: Context) -> str:
    """How the audit trail names the task that asked: ``airflow:<dag_id>.<task_id>``."""
    ti = context["ti"]
    return f"airflow:{ti.dag_id}.{ti.task_id}"


def run_record(run: Run) -> dict[str, Any]:
    """The run as JSON values, for XCom and trigger events."""
    return {
        "run_id": run.run_id,
        "as_of_date": run.as_of_date.isoformat(),
        "region": run.region,
        "phase": str(run.phase),
        "attempts": run.attempts,
        "last_error": run.last_error,
        "phase_changed_at": run.phase_changed_at.isoformat(),
    }


@contextmanager
def final_failures() -> Iterator[None]:
    """Fail the task without retries, in the engine's own words, where no retry can help:
    bad input (a day the exchange does not trade, an unknown region, an illegal
    transition) and a FAILED run (until someone retries it: ``prometheus runs retry``)."""
    try:
        yield
    except (InputError, RunFailed) as exc:
        raise AirflowFailException(str(exc)) from None
