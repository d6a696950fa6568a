"""What a phase task is given: the run it works for and the transaction it writes in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection
from structlog.typing import FilteringBoundLogger


@dataclass(frozen=True)
class TaskContext:
    """Everything a task may touch. ``conn`` is inside the phase's transaction: what the
    task writes through it commits together with the phase change, or not at all."""

    run_id: int
    as_of_date: date
    region: str
    phase: str
    attempt: int
    conn: Connection
    log: FilteringBoundLogger


PhaseTask = Callable[[TaskContext], object]
