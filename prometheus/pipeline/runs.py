"""What the state machine reads and returns: runs, their events, and the outcome of a step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Row

from prometheus.pipeline.phases import TERMINAL, Phase


@dataclass(frozen=True)
class Run:
    run_id: int
    as_of_date: date
    region: str
    phase: Phase
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    phase_changed_at: datetime
    # The oldest active hold that covers the run when it was read (None: not held, or
    # read by a statement that does not look: a phase change's own result).
    hold_id: int | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Run:
        return cls.from_mapping(row._mapping)

    @classmethod
    def from_mapping(cls, m: Mapping[Any, Any]) -> Run:
        return cls(
            run_id=m["run_id"],
            as_of_date=m["as_of_date"],
            region=m["region"],
            phase=Phase(m["phase"]),
            attempts=m["attempts"],
            last_error=m["last_error"],
            next_attempt_at=m["next_attempt_at"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            phase_changed_at=m["phase_changed_at"],
            hold_id=m.get("hold_id"),
        )


@dataclass(frozen=True)
class Event:
    event_id: int
    run_id: int
    kind: str
    from_phase: str | None
    to_phase: str
    at: datetime
    actor: str
    detail: dict[str, Any]


class Outcome(StrEnum):
    """What one ``advance_run`` call did."""

    ADVANCED = "advanced"  # the phase's task ran and the run moved on
    WAITING = "waiting"  # WAITING_FOR_DATA: nothing to do until the data is in
    TERMINAL = "terminal"  # COMPLETED or FAILED already
    BACKING_OFF = "backing_off"  # a failed attempt's backoff has not elapsed
    BUSY = "busy"  # another process holds the run (or it does not exist)
    HELD = "held"  # an operator's hold covers the run: nothing claims it until released
    RETRY_SCHEDULED = "retry_scheduled"  # the attempt failed; retried after the backoff
    FAILED = "failed"  # the attempt failed and that was the last one: the run is FAILED


@dataclass(frozen=True)
class Step:
    outcome: Outcome
    run: Run | None  # as the step left it
    error: str | None = None
    phase: Phase | None = None  # the phase whose task ran, if one did
    took_s: float | None = None  # from its claim to its commit (the phase duration metric)

    @property
    def attempt_failed(self) -> bool:
        """The phase's task failed: retried after a backoff, or the run is FAILED."""
        return self.outcome in (Outcome.FAILED, Outcome.RETRY_SCHEDULED)

    @property
    def should_continue(self) -> bool:
        """Whether stepping the same run again right away can make progress."""
        return (
            self.outcome is Outcome.ADVANCED
            and self.run is not None
            and (self.run.phase not in TERMINAL and self.run.phase is not Phase.WAITING_FOR_DATA)
        )
