"""The phases, the legal transitions and the retry schedule: pure data and arithmetic.

The same transition table lives in the database's guard trigger
(``sql/triggers/0004_engine_runs.sql``); a test checks that the two agree.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from prometheus.config import RETRY_CAP
from prometheus.errors import InputError


class Phase(StrEnum):
    WAITING_FOR_DATA = "WAITING_FOR_DATA"
    DATA_READY = "DATA_READY"
    SIGNALS_DONE = "SIGNALS_DONE"
    UNIVERSES_DONE = "UNIVERSES_DONE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


TERMINAL = frozenset({Phase.COMPLETED, Phase.FAILED})
ACTIVE = frozenset(Phase) - TERMINAL

#: A phase with work to do, the name of the task that does it, and where it leads.
TASK_OF: dict[Phase, str] = {
    Phase.DATA_READY: "signals",
    Phase.SIGNALS_DONE: "universes",
    Phase.UNIVERSES_DONE: "books",
}
NEXT: dict[Phase, Phase] = {
    Phase.WAITING_FOR_DATA: Phase.DATA_READY,
    Phase.DATA_READY: Phase.SIGNALS_DONE,
    Phase.SIGNALS_DONE: Phase.UNIVERSES_DONE,
    Phase.UNIVERSES_DONE: Phase.COMPLETED,
}
WORKABLE = frozenset(TASK_OF)

TRANSITIONS = frozenset(NEXT.items()) | {(phase, Phase.FAILED) for phase in ACTIVE}


def is_legal(from_phase: Phase, to_phase: Phase) -> bool:
    return (from_phase, to_phase) in TRANSITIONS


#: The forward line, WAITING_FOR_DATA first and COMPLETED last (FAILED is off it).
LINE: tuple[Phase, ...] = (Phase.WAITING_FOR_DATA, *NEXT.values())


def has_reached(phase: Phase, target: Phase) -> bool:
    """Whether a run in ``phase`` is at ``target`` or past it on the forward line: what
    someone waiting for ``target`` wants to know. A FAILED run has reached nothing but
    FAILED (it will not go on by itself)."""
    if phase is Phase.FAILED or target is Phase.FAILED:
        return phase is target
    return LINE.index(phase) >= LINE.index(target)


def parse_phase(text: str) -> Phase:
    try:
        return Phase(text.strip().upper())
    except ValueError:
        names = ", ".join(Phase)
        raise InputError(f"unknown phase {text!r}: expected one of {names}") from None


def retry_delay(failed_attempts: int, base: timedelta, cap: timedelta = RETRY_CAP) -> timedelta:
    """The wait before attempt n+1 after n failures: base x 2^(n-1), capped."""
    if failed_attempts < 1:
        return timedelta(0)
    # Cap the exponent too: 2**n for a large n would overflow timedelta before min() runs.
    return min(base * (1 << min(failed_attempts - 1, 32)), cap)
