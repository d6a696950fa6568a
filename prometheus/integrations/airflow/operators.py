"""Operators that ask for a run's transitions; every rule stays in the engine.

- ``MarkDataReadyOperator``: create the run if missing and declare its data in (the
  seed's ``--ensure --data-ready``), for data that lands outside Prometheus's ingestion
  tables. Runs whose datasets are loaded through ``prometheus ingest`` need no such
  task: the database makes them ready itself.
- ``AdvanceRunOperator``: one step of the run, or (``until_completed=True``) step it in
  this task until COMPLETED, for a site without a reactor.

Both read the database at execute time (``conn_id``, or ``PROMETHEUS_DATABASE_URL``) and
return the run as a dict (pushed to XCom).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.db.connect import connect_listener
from prometheus.integrations.airflow.connection import (
    APPLICATION_NAME,
    task_engine,
    task_settings,
)
from prometheus.integrations.airflow.targets import actor, final_failures, run_key, run_record
from prometheus.orchestration.steering import advance, drive, mark_data_ready
from prometheus.orchestration.waiting import POLL_INTERVAL_SECONDS_DEFAULT, RunFailed
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Outcome, Run

DRIVE_TIMEOUT_DEFAULT = timedelta(hours=12)


class MarkDataReadyOperator(BaseOperator):
    """Create the run of (``as_of_date``, ``region``) and declare its data in.

    Safe to repeat: a run already past WAITING_FOR_DATA is left as it is. A day the
    region's exchange does not trade fails the task, unless ``force``.
    """

    template_fields: Sequence[str] = ("as_of_date", "region")
    ui_color = "#f4d9a7"

    def __init__(
        self,
        *,
        as_of_date: str | date,
        region: str,
        conn_id: str | None = None,
        force: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.as_of_date = as_of_date
        self.region = region
        self.conn_id = conn_id
        self.force = force

    def execute(self, context: Context) -> dict[str, Any]:
        day, region = run_key(self.as_of_date, self.region)
        settings = task_settings(self.conn_id)
        with task_engine(settings) as engine, final_failures():
            run = mark_data_ready(
                engine, day, region, settings=settings, actor=actor(context), force=self.force
            )
        self.log.info("run %s (%s %s) is %s", run.run_id, day, region, run.phase)
        return run_record(run)


class AdvanceRunOperator(BaseOperator):
    """Advance the run of (``as_of_date``, ``region``): one step, or until COMPLETED.

    One step (the default) is ``prometheus runs advance``: a failed attempt fails the
    task (Airflow's retries ask again; the engine's own backoff decides when the next
    attempt may run), and so does a run that another process is advancing right now.
    With ``until_completed=True`` the task steps the run itself until it is COMPLETED,
    waiting for its data and its backoffs on a LISTEN (no spin), for up to ``timeout``.
    A FAILED run fails the task with the run's last error, without retries.
    """

    template_fields: Sequence[str] = ("as_of_date", "region")
    ui_color = "#f4d9a7"

    def __init__(
        self,
        *,
        as_of_date: str | date,
        region: str,
        conn_id: str | None = None,
        until_completed: bool = False,
        timeout: timedelta | float = DRIVE_TIMEOUT_DEFAULT,
        poll_interval: float = POLL_INTERVAL_SECONDS_DEFAULT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.as_of_date = as_of_date
        self.region = region
        self.conn_id = conn_id
        self.until_completed = until_completed
        self.timeout = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> dict[str, Any]:
        day, region = run_key(self.as_of_date, self.region)
        settings = task_settings(self.conn_id)
        with task_engine(settings) as engine, final_failures():
            if self.until_completed:
                run = self._drive(engine, settings, day, region, actor(context))
            else:
                run = self._step(engine, settings, day, region, actor(context))
        return run_record(run)

    def _step(self, engine: Engine, settings: Settings, day: date, region: str, who: str) -> Run:
        step = advance(engine, day, region, settings=settings, actor=who)
        if step.run is None or step.outcome is Outcome.BUSY:
            raise AirflowException(f"run {day} {region} is being advanced by another process")
        self.log.info("run %s: %s, now %s", step.run.run_id, step.outcome, step.run.phase)
        if step.run.phase is Phase.FAILED:
            raise RunFailed(step.run)
        if step.outcome is Outcome.RETRY_SCHEDULED:
            raise AirflowException(f"run {step.run.run_id}, {step.phase}: {step.error}")
        return step.run

    def _drive(self, engine: Engine, settings: Settings, day: date, region: str, who: str) -> Run:
        assert settings.listen_dsn is not None
        with connect_listener(settings.listen_dsn, application_name=APPLICATION_NAME) as conn:
            run = drive(
                engine, conn, day, region, settings=settings, actor=who,
                timeout=self.timeout, poll_interval=self.poll_interval,
            )  # fmt: skip
        self.log.info("run %s (%s %s) is COMPLETED", run.run_id, day, region)
        return run
