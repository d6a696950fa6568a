"""Phase tasks for fault tests: ``Settings(phase_tasks=fault_tasks.MODULE)``.

Every task writes one marker row per (run, phase) in the phase's own transaction, then
holds that transaction a moment (``pg_sleep``), so that a fault finds statements in
flight as well as transactions between statements. A marker
commits with its phase change or not at all: exactly one marker per (run, phase) is
"exactly once", on durable records; two is a phase applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from prometheus.pipeline.context import TaskContext

MODULE = __name__
TASK_SECONDS = 0.002


def _mark(ctx: TaskContext) -> None:
    ctx.conn.execute(
        text("INSERT INTO fault_markers (run_id, phase) VALUES (:run_id, :phase)"),
        {"run_id": ctx.run_id, "phase": ctx.phase},
    )
    ctx.conn.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": TASK_SECONDS})


def signals(ctx: TaskContext) -> None:
    _mark(ctx)


def universes(ctx: TaskContext) -> None:
    _mark(ctx)


def books(ctx: TaskContext) -> None:
    _mark(ctx)


def create_marker_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE fault_markers ("
                " run_id bigint NOT NULL, phase text NOT NULL,"
                " written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
        )


def marker_count(engine: Engine) -> int:
    with engine.connect() as conn:
        count: int = conn.execute(text("SELECT count(*) FROM fault_markers")).scalar_one()
        return count


@dataclass(frozen=True)
class Outcome:
    """What a workload came to, read from the database after the fault."""

    runs: int
    completed: int
    failed: int
    duplicated_markers: int  # (run, phase) pairs with more than one marker
    missing_markers: int  # (run, phase) pairs of a COMPLETED run with none
    failed_attempts: int
    first_phase_after: datetime | None  # the first phase committed after the given moment

    def line(self, fault: str, recovery_s: float | None) -> str:
        recovery = "n/a" if recovery_s is None else f"{recovery_s:.2f} s"
        return (
            f"{fault}: recovery {recovery} (server back -> first completed phase);"
            f" runs {self.runs}, completed {self.completed}, failed {self.failed},"
            f" duplicated markers {self.duplicated_markers},"
            f" missing markers {self.missing_markers}, failed attempts {self.failed_attempts}"
        )


def outcome(engine: Engine, *, back_at: datetime) -> Outcome:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                """
                SELECT
                  (SELECT count(*) FROM engine_runs) AS runs,
                  (SELECT count(*) FROM engine_runs WHERE phase = 'COMPLETED') AS completed,
                  (SELECT count(*) FROM engine_runs WHERE phase = 'FAILED') AS failed,
                  (SELECT count(*) FROM (
                      SELECT 1 FROM fault_markers GROUP BY run_id, phase HAVING count(*) > 1
                   ) d) AS duplicated_markers,
                  (SELECT count(*) FROM engine_runs r
                     CROSS JOIN unnest(ARRAY['DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE']) p
                     WHERE r.phase = 'COMPLETED' AND NOT EXISTS (
                       SELECT 1 FROM fault_markers m WHERE m.run_id = r.run_id AND m.phase = p)
                  ) AS missing_markers,
                  (SELECT count(*) FROM engine_run_events WHERE kind = 'attempt_failed')
                    AS failed_attempts,
                  (SELECT min(at) FROM engine_run_events
                     WHERE kind = 'transition' AND at >= :back_at
                       AND from_phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE')
                  ) AS first_phase_after
                """
            ),
            {"back_at": back_at},
        ).one()
        return Outcome(**row._mapping)
