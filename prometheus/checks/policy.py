"""What `check` counts as a problem: limits, with the SPEC's defaults, and how operators
write them (``--stuck-after 2h``, ``--stuck-after SIGNALS_DONE=30m``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from prometheus.durations import parse_duration
from prometheus.errors import InputError
from prometheus.pipeline.phases import WORKABLE, Phase, parse_phase

STUCK_AFTER_DEFAULT = timedelta(hours=2)
WINDOW_DEFAULT = timedelta(hours=24)
MAX_FAILURES_DEFAULT = 0
DATA_LATE_AFTER_DEFAULT = timedelta(hours=4)
REACTOR_SILENT_AFTER_DEFAULT = timedelta(minutes=2)
#: pg_notification_queue_usage() above this is a problem: healthy queues sit near 0.
MAX_NOTIFY_QUEUE_DEFAULT = 0.5
#: A hold is for a while (bad data being fixed); one forgotten for a day holds the books.
MAX_HOLD_AGE_DEFAULT = timedelta(hours=24)
#: WAITING_FOR_DATA is not "stuck": its lateness is measured from the session close.
STUCK_PHASES = tuple(p for p in Phase if p in WORKABLE)


@dataclass(frozen=True)
class StuckAfter:
    """One ``--stuck-after`` value: the limit for ``phase``, or the default when None."""

    limit: timedelta
    phase: Phase | None = None


def parse_stuck_after(text: str) -> StuckAfter:
    """``2h`` sets the default limit; ``SIGNALS_DONE=30m`` sets one phase's limit."""
    phase_text, sep, duration_text = text.rpartition("=")
    limit = parse_duration(duration_text)
    if not sep:
        return StuckAfter(limit)
    phase = parse_phase(phase_text)
    if phase not in STUCK_PHASES:
        names = ", ".join(STUCK_PHASES)
        hint = " (its lateness is --data-late-after)" if phase is Phase.WAITING_FOR_DATA else ""
        raise InputError(f"--stuck-after {phase}{hint}: a phase limit applies only to {names}")
    return StuckAfter(limit, phase)


def stuck_limits(items: Iterable[StuckAfter]) -> tuple[timedelta, Mapping[Phase, timedelta]]:
    """The default limit and the per-phase ones from repeated ``--stuck-after`` values.

    Giving the default, or one phase, twice is refused rather than resolved by order: in a
    crontab line that is a mistake, and silently taking one would hide it.
    """
    default: timedelta | None = None
    by_phase: dict[Phase, timedelta] = {}
    for item in items:
        if item.phase is None:
            if default is not None:
                raise InputError("--stuck-after DURATION given twice; give it once")
            default = item.limit
        elif item.phase in by_phase:
            raise InputError(f"--stuck-after {item.phase}=... given twice; give it once")
        else:
            by_phase[item.phase] = item.limit
    return (STUCK_AFTER_DEFAULT if default is None else default), by_phase


@dataclass(frozen=True)
class CheckPolicy:
    """What counts as a problem. Defaults are SPEC section 5's."""

    stuck_after: timedelta = STUCK_AFTER_DEFAULT
    stuck_after_by_phase: Mapping[Phase, timedelta] = field(
        default_factory=lambda: MappingProxyType({})
    )
    window: timedelta = WINDOW_DEFAULT
    max_failures: int = MAX_FAILURES_DEFAULT
    data_late_after: timedelta = DATA_LATE_AFTER_DEFAULT
    reactor_silent_after: timedelta = REACTOR_SILENT_AFTER_DEFAULT
    require_reactor: bool = False
    max_notify_queue: float = MAX_NOTIFY_QUEUE_DEFAULT  # a fraction of the queue, 0..1
    max_hold_age: timedelta = MAX_HOLD_AGE_DEFAULT

    def __post_init__(self) -> None:
        # Frozen means frozen: a caller's dict must not change the policy afterwards.
        object.__setattr__(
            self, "stuck_after_by_phase", MappingProxyType(dict(self.stuck_after_by_phase))
        )
        for phase in self.stuck_after_by_phase:
            if phase not in STUCK_PHASES:
                raise InputError(
                    f"a stuck-after limit applies only to a workable phase, not {phase}"
                )
        for name, value in (
            ("--stuck-after", self.stuck_after),
            ("--window", self.window),
            ("--reactor-silent-after", self.reactor_silent_after),
            ("--max-hold-age", self.max_hold_age),
            *((f"--stuck-after {p}", v) for p, v in self.stuck_after_by_phase.items()),
        ):
            if value <= timedelta(0):
                raise InputError(f"{name} must be longer than 0s")
        if self.data_late_after < timedelta(0):
            raise InputError("--data-late-after must not be negative")
        if self.max_failures < 0:
            raise InputError("--max-failures must not be negative")
        if not 0 <= self.max_notify_queue < 1:
            raise InputError("--max-notify-queue must be a fraction from 0 to below 1")

    def stuck_limit(self, phase: Phase) -> timedelta:
        return self.stuck_after_by_phase.get(phase, self.stuck_after)
