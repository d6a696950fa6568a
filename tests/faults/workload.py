"""A few hundred runs through a reactor while a fault happens to its server.

``Workload`` makes the runs ready in one transaction, waits until part of the work is
done (markers committed), lets the test do its fault, then waits for every run to end
and reads the outcome from the database: how many completed, failed, were applied twice,
and how long after the server came back the first phase completed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, text

from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import get_or_create_run, update_phase
from tests.support import fault_tasks
from tests.support.waiting import wait_until

RUNS = 300
FIRST_DAY = date(2020, 1, 1)
FAULT_AFTER_MARKERS = 150  # about a sixth of the 900 phases: the fault lands mid-workload
DONE_DEADLINE_S = 90.0


@dataclass
class Workload:
    engine: Engine  # on the server the outcome is read from (after a failover, the new one)
    runs: int = RUNS

    def make_ready(self) -> None:
        with self.engine.begin() as conn:
            for offset in range(self.runs):
                day = FIRST_DAY + timedelta(days=offset)
                run = get_or_create_run(conn, day, "US", actor="test")
                update_phase(conn, run, Phase.DATA_READY, actor="test")

    def wait_mid_way(self) -> None:
        wait_until(
            lambda: fault_tasks.marker_count(self.engine) >= FAULT_AFTER_MARKERS,
            timeout=60,
            interval=0.005,
            what=f"{FAULT_AFTER_MARKERS} phases done",
        )

    def run_through(self, fault: Callable[[], None]) -> tuple[datetime, fault_tasks.Outcome]:
        """Make the runs ready, do ``fault`` mid-way, wait for every run to end; return
        when the server was back (``fault`` returned) and the outcome."""
        self.make_ready()
        self.wait_mid_way()
        fault()
        back_at = datetime.now(UTC)
        self.engine.dispose()  # the test's own pooled connections died with the server
        wait_until(self._all_ended, timeout=DONE_DEADLINE_S, interval=0.1, what="every run ended")
        return back_at, fault_tasks.outcome(self.engine, back_at=back_at)

    def _all_ended(self) -> bool:
        with self.engine.connect() as conn:
            active = conn.execute(
                text("SELECT count(*) FROM engine_runs WHERE phase NOT IN ('COMPLETED', 'FAILED')")
            ).scalar_one()
            return bool(active == 0)


def report(
    fault: str, back_at: datetime, outcome: fault_tasks.Outcome, *, runs: int = RUNS
) -> None:
    """Print the measurement (``pytest -rP`` shows it) and assert exactly once."""
    first = outcome.first_phase_after
    recovery = (first - back_at).total_seconds() if first is not None else None
    print(outcome.line(fault, recovery))
    assert outcome.runs == runs
    assert outcome.failed == 0, outcome
    assert outcome.completed == runs, outcome
    assert outcome.duplicated_markers == 0, outcome
    assert outcome.missing_markers == 0, outcome
    assert outcome.failed_attempts == 0, outcome  # an outage is never a task's attempt
    assert first is not None, "no phase completed after the server was back"
