"""``EngineRunPhaseTrigger``: wait in the triggerer for a run to reach a phase.

It LISTENs on ``prometheus_engine_runs`` and is woken by the engine's own NOTIFY (COMPLETED
and FAILED are always announced), so a deferred sensor resumes milliseconds after the
run's commit, with no worker held meanwhile; the row is read again every
``poll_interval`` seconds in case a notification was missed (NOTIFY is not durable).

A trigger may be rebuilt from ``serialize()`` in another triggerer process at any time,
so its kwargs are all it has: the run's key, the phase, an absolute deadline (a restart
does not restart the clock), and the Airflow connection id, never a URL or a password
(without one, the triggerer's ``PROMETHEUS_DATABASE_URL``; it LISTENs on
``PROMETHEUS_LISTEN_URL`` where that is set). ``run()`` is idempotent:
each (re)start LISTENs, reads the row, and waits. A lost connection is re-established
with capped backoff until the deadline, so a database restart does not fail the task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from airflow.triggers.base import BaseTrigger, TriggerEvent

from prometheus.db.connect import connect_listener_async
from prometheus.errors import first_line
from prometheus.integrations.airflow.connection import trigger_settings
from prometheus.integrations.airflow.targets import run_record
from prometheus.orchestration.services import Backoff
from prometheus.orchestration.waiting import (
    POLL_INTERVAL_SECONDS_DEFAULT,
    RunFailed,
    WaitTimedOut,
    await_phase,
)
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.runs import Run


class EngineRunPhaseTrigger(BaseTrigger):
    """Fires one event: ``{"status": "reached" | "failed" | "timeout", "message", "run"}``
    (``run`` as JSON values, or None if the run never appeared)."""

    def __init__(
        self,
        *,
        as_of_date: str,
        region: str,
        phase: str = Phase.COMPLETED,
        conn_id: str | None = None,
        poll_interval: float = POLL_INTERVAL_SECONDS_DEFAULT,
        deadline: str | None = None,
    ) -> None:
        super().__init__()
        self.as_of_date = as_of_date
        self.region = region
        self.phase = str(Phase(phase))
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline  # ISO 8601, UTC; None: wait until Airflow's own timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "as_of_date": self.as_of_date,
                "region": self.region,
                "phase": self.phase,
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        settings = await trigger_settings(self.conn_id)
        assert settings.listen_dsn is not None
        backoff = Backoff()
        while True:
            try:
                conn = await connect_listener_async(
                    settings.listen_dsn, application_name=self.application_name
                )
                async with conn:
                    run = await await_phase(
                        conn,
                        date.fromisoformat(self.as_of_date),
                        self.region,
                        Phase(self.phase),
                        timeout=max(self._remaining(), 0.0),
                        poll_interval=self.poll_interval,
                    )
            except RunFailed as exc:
                yield _event("failed", str(exc), exc.run)
                return
            except WaitTimedOut as exc:
                yield _event("timeout", str(exc), exc.run)
                return
            except psycopg.OperationalError as exc:
                if self._remaining() <= 0:
                    why = f"the database could not be reached by the deadline: {first_line(exc)}"
                    yield _event("timeout", why, None)
                    return
                delay = min(backoff.next_delay(), self._remaining())
                self.log.warning("lost the database (%s); again in %.1fs", first_line(exc), delay)
                await asyncio.sleep(delay)
                continue
            yield _event("reached", f"run {run.run_id} is {run.phase}", run)
            return

    @property
    def application_name(self) -> str:
        """How its connection shows in ``pg_stat_activity``: which sensor waits for what."""
        return f"prometheus-airflow-trigger {self.as_of_date} {self.region} {self.phase}"[:63]

    def _remaining(self) -> float:
        if self.deadline is None:
            return float("inf")
        return (datetime.fromisoformat(self.deadline) - datetime.now(UTC)).total_seconds()


def _event(status: str, message: str, run: Run | None) -> TriggerEvent:
    record = run_record(run) if run is not None else None
    return TriggerEvent({"status": status, "message": message, "run": record})
