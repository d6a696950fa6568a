"""The problems `check` reports: one typed record per kind, each with a one-line message
that names the run and says what is wrong, in operators' units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from prometheus.pipeline.phases import Phase

_ERROR_CHARS = 120
_LISTED_RUNS = 5


class ProblemKind(StrEnum):
    """Problem kinds, in the order they are reported (the most systemic first)."""

    NOTIFY_QUEUE = "NOTIFY_QUEUE"
    REACTOR_SILENT = "REACTOR_SILENT"
    LISTENER_DEAF = "LISTENER_DEAF"
    FAILURES = "FAILURES"
    STUCK = "STUCK"
    HOLD_STALE = "HOLD_STALE"
    BATCH_REGRESSED = "BATCH_REGRESSED"
    DATA_LATE = "DATA_LATE"
    NO_DATASETS = "NO_DATASETS"


@dataclass(frozen=True)
class StuckRun:
    kind: ClassVar[ProblemKind] = ProblemKind.STUCK
    run_id: int
    as_of_date: date
    region: str
    phase: Phase
    phase_changed_at: datetime
    age: timedelta
    limit: timedelta
    attempts: int
    last_error: str | None

    @property
    def message(self) -> str:
        text = f"{_run(self)} in {self.phase} for {human(self.age)} (limit {human(self.limit)})"
        if self.attempts:
            text += f"; {self.attempts} failed attempt(s), last error: {_short(self.last_error)}"
        return text


@dataclass(frozen=True)
class MissingDataset:
    dataset: str
    status: str | None  # None: no batch row at all


@dataclass(frozen=True)
class DataLate:
    kind: ClassVar[ProblemKind] = ProblemKind.DATA_LATE
    run_id: int
    as_of_date: date
    region: str
    exchange: str
    close: datetime
    late_by: timedelta  # since the close
    limit: timedelta
    missing: tuple[MissingDataset, ...]

    @property
    def message(self) -> str:
        if self.missing:
            waiting = ", ".join(f"{m.dataset} ({m.status or 'no batch'})" for m in self.missing)
        else:  # e.g. forced back to WAITING_FOR_DATA: no batch change will re-evaluate it
            waiting = "nothing: every required batch is COMPLETE (`runs ensure --data-ready`)"
        return (
            f"{_run(self)} still WAITING_FOR_DATA {human(self.late_by)} after the "
            f"{self.exchange} close at {_utc(self.close)} (limit {human(self.limit)}); "
            f"waiting for {waiting}"
        )


@dataclass(frozen=True)
class FailedRun:
    run_id: int
    as_of_date: date
    region: str
    failed_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class TooManyFailures:
    kind: ClassVar[ProblemKind] = ProblemKind.FAILURES
    window: timedelta
    max_failures: int
    runs: tuple[FailedRun, ...]

    @property
    def message(self) -> str:
        listed = ", ".join(_run(r) for r in self.runs[:_LISTED_RUNS])
        more = len(self.runs) - _LISTED_RUNS
        return (
            f"{len(self.runs)} run(s) failed within {human(self.window)} "
            f"(max {self.max_failures}): {listed}{f' and {more} more' if more > 0 else ''}"
        )


@dataclass(frozen=True)
class Heartbeat:
    reactor_id: str
    host: str
    pid: int
    last_seen_at: datetime
    stopped_at: datetime | None


@dataclass(frozen=True)
class ReactorSilent:
    kind: ClassVar[ProblemKind] = ProblemKind.REACTOR_SILENT
    limit: timedelta
    required: bool  # reported because --require-reactor, not because one went quiet
    last: Heartbeat | None  # the reactor that went quiet, or the last one seen at all
    silent_for: timedelta | None

    @property
    def message(self) -> str:
        text = f"no reactor heartbeat within {human(self.limit)}"
        if self.last is None:
            text += "; no reactor has ever run here"
        else:
            who = f"reactor {self.last.reactor_id} (host {self.last.host}, pid {self.last.pid})"
            if self.last.stopped_at is not None:
                text += f"; the last, {who}, stopped cleanly at {_utc(self.last.stopped_at)}"
            else:
                ago = human(self.silent_for or timedelta(0))
                text += f"; {who} was last seen {ago} ago, at {_utc(self.last.last_seen_at)}"
        return f"{text} (--require-reactor)" if self.required else text


@dataclass(frozen=True)
class ListenerDeaf:
    kind: ClassVar[ProblemKind] = ProblemKind.LISTENER_DEAF
    reactor_id: str
    host: str
    pid: int
    problem: str | None  # the reactor's own reason

    @property
    def message(self) -> str:
        return (
            f"reactor {self.reactor_id} (host {self.host}, pid {self.pid}) cannot hear "
            f"notifications: {self.problem or 'not proven'}; it polls for due runs instead "
            "(set PROMETHEUS_LISTEN_URL to a direct URL of the primary)"
        )


@dataclass(frozen=True)
class NotifyQueueFull:
    kind: ClassVar[ProblemKind] = ProblemKind.NOTIFY_QUEUE
    usage: float  # pg_notification_queue_usage(), 0..1
    limit: float

    @property
    def message(self) -> str:
        return (
            f"the server's NOTIFY queue is {_percent(self.usage)} full (limit "
            f"{_percent(self.limit)}): a session that LISTENs and does not read (or a long "
            "transaction) holds it; past prometheus.notify_queue_limit (0.5 unless set) "
            "the engine sends no notifications, and reactors poll until it drains"
        )


@dataclass(frozen=True)
class BatchRegressed:
    kind: ClassVar[ProblemKind] = ProblemKind.BATCH_REGRESSED
    run_id: int
    as_of_date: date
    region: str
    phase: Phase
    dataset: str
    status: str

    @property
    def message(self) -> str:
        return (
            f"{_run(self)} is {self.phase} but its required batch {self.dataset} is "
            f"{self.status}: results may not match the data"
        )


@dataclass(frozen=True)
class NoDatasets:
    kind: ClassVar[ProblemKind] = ProblemKind.NO_DATASETS
    run_id: int
    as_of_date: date
    region: str
    waiting_since: datetime

    @property
    def message(self) -> str:
        return (
            f"{_run(self)} is WAITING_FOR_DATA but region {self.region} requires no datasets: "
            "nothing will make it DATA_READY (add region_datasets rows, or declare the data "
            "with `runs ensure --data-ready`)"
        )


@dataclass(frozen=True)
class StaleHold:
    """A hold placed longer ago than the limit, still holding: held books are late books."""

    kind: ClassVar[ProblemKind] = ProblemKind.HOLD_STALE
    hold_id: int
    scope: str  # as `runs holds` describes it: region, phase, dates
    held_by: str
    held_at: datetime
    age: timedelta
    limit: timedelta
    runs_held: int
    reason: str

    @property
    def message(self) -> str:
        return (
            f"hold {self.hold_id} on {self.scope} by {self.held_by} for {human(self.age)} "
            f"(limit {human(self.limit)}) holds {self.runs_held} run(s): {_short(self.reason)}"
            " (`prometheus runs release " + str(self.hold_id) + " --reason ...` when it is over)"
        )


Problem = (
    StuckRun
    | DataLate
    | TooManyFailures
    | ReactorSilent
    | ListenerDeaf
    | NotifyQueueFull
    | BatchRegressed
    | NoDatasets
    | StaleHold
)


def human(delta: timedelta) -> str:
    """An age as operators read it: the two largest units (``3h05m``, ``2d4h``, ``45s``).

    The second unit shows whenever anything is left below the first, so an age just past
    a limit never reads the same as the limit (``2h00m`` against ``limit 2h``).
    """
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if rest or hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if rest else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


def _run(run: StuckRun | DataLate | FailedRun | BatchRegressed | NoDatasets) -> str:
    return f"run {run.run_id} {run.as_of_date.isoformat()} {run.region}"


def _percent(fraction: float) -> str:
    """``0.63`` -> ``63%``; a sliver stays visible (``0.00012%``), never rounds to 0%."""
    return f"{fraction * 100:.3g}%"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    if not lines:
        return "(none)"
    return lines[0] if len(lines[0]) <= _ERROR_CHARS else lines[0][: _ERROR_CHARS - 3] + "..."
