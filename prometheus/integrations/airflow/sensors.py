"""``EngineRunSensor``: wait for a run to reach a phase (COMPLETED by default).

Deferrable by default: the task checks the run once and, unless it is there already,
defers to ``EngineRunPhaseTrigger`` and gives its worker slot back. The triggerer waits
on a LISTEN (one connection per waiting sensor, an idle backend) and the task resumes
in ``execute_complete`` within milliseconds of the run's COMPLETED commit. With
``deferrable=False`` it pokes in a worker like any sensor (``poke_interval``,
``mode="reschedule"`` to free the slot between pokes).

A FAILED run fails the task with the run's last error, without retries (retry the run
with ``prometheus runs retry``, then clear the task). A run that does not get there
within ``timeout`` fails the task with ``AirflowSensorTimeout``, saying where the run is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from prometheus.integrations.airflow.connection import task_engine, task_settings
from prometheus.integrations.airflow.targets import final_failures, run_key, run_record
from prometheus.integrations.airflow.triggers import EngineRunPhaseTrigger
from prometheus.orchestration.waiting import PhaseWait
from prometheus.pipeline.phases import Phase, parse_phase
from prometheus.pipeline.state import find_run


class EngineRunSensor(BaseSensorOperator):
    """Wait until the run of (``as_of_date``, ``region``) reaches ``phase``.

    ``poke_interval`` is also the deferred trigger's backstop: how often it reads the
    row in case a notification was missed (default 60 s). Returns the run as a dict.
    """

    template_fields: Sequence[str] = ("as_of_date", "region")
    ui_color = "#c9e4f2"

    def __init__(
        self,
        *,
        as_of_date: str | date,
        region: str,
        phase: str | Phase = Phase.COMPLETED,
        conn_id: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.as_of_date = as_of_date
        self.region = region
        target = parse_phase(str(phase))
        if target is Phase.FAILED:
            raise ValueError(
                "wait for a phase on the way to COMPLETED: a FAILED run fails the task"
            )
        self.phase = str(target)
        self.conn_id = conn_id
        self.deferrable = deferrable

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        already = self.poke(context)
        if already:
            return already.xcom_value
        day, region = run_key(self.as_of_date, self.region)
        deadline = datetime.now(UTC) + timedelta(seconds=self.timeout)
        self.defer(
            trigger=EngineRunPhaseTrigger(
                as_of_date=day.isoformat(),
                region=region,
                phase=self.phase,
                conn_id=self.conn_id,
                poll_interval=self.poke_interval,
                deadline=deadline.isoformat(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the run: done when it reached the phase; a FAILED run fails."""
        day, region = run_key(self.as_of_date, self.region)
        wait = PhaseWait(day, region, Phase(self.phase), timeout=0)
        with task_engine(task_settings(self.conn_id)) as engine, final_failures():
            run = wait.judge(find_run(engine, day, region))
        where = wait.run.phase if wait.run else "not created yet"
        self.log.info("run %s %s is %s; waiting for %s", day, region, where, self.phase)
        return PokeReturnValue(run is not None, run_record(run) if run else None)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Where the task resumes when the trigger fires."""
        status, message = event["status"], event["message"]
        if status == "failed":
            raise AirflowFailException(message)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        self.log.info("%s (woken by the trigger)", message)
        record: dict[str, Any] = event["run"]
        return record
