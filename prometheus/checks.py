"""``prometheus check``: the problems an operator must look at, read from the database.

Pure over the database (no printing, no exit codes): the CLI renders the report, and the
reactor exports the same figures as gauges. Every figure comes from one read-only
REPEATABLE READ transaction and is measured against the database's ``now()``, so the
counts agree with the problems and a skewed host clock changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine

from prometheus.calendar import TradingCalendar, UnknownRegion
from prometheus.db.queries import query
from prometheus.durations import parse_duration
from prometheus.errors import InputError
from prometheus.pipeline.phases import WORKABLE, Phase, parse_phase

STUCK_AFTER_DEFAULT = timedelta(hours=2)
WINDOW_DEFAULT = timedelta(hours=24)
MAX_FAILURES_DEFAULT = 0
DATA_LATE_AFTER_DEFAULT = timedelta(hours=4)
REACTOR_SILENT_AFTER_DEFAULT = timedelta(minutes=2)
#: A silent reactor is a problem only if some reactor heartbeated this recently (SPEC 5):
#: a deployment on cron timers alone, or one whose reactor was retired, has none.
REACTOR_LOOKBACK = timedelta(days=1)
#: WAITING_FOR_DATA is not "stuck": its lateness is measured from the session close.
STUCK_PHASES = tuple(p for p in Phase if p in WORKABLE)
_ERROR_CHARS = 120
_LISTED_RUNS = 5


class ProblemKind(StrEnum):
    """Problem kinds, in the order they are reported (the most systemic first)."""

    REACTOR_SILENT = "REACTOR_SILENT"
    FAILURES = "FAILURES"
    STUCK = "STUCK"
    BATCH_REGRESSED = "BATCH_REGRESSED"
    DATA_LATE = "DATA_LATE"
    NO_DATASETS = "NO_DATASETS"


# -- policy ------------------------------------------------------------------------------


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
            *((f"--stuck-after {p}", v) for p, v in self.stuck_after_by_phase.items()),
        ):
            if value <= timedelta(0):
                raise InputError(f"{name} must be longer than 0s")
        if self.data_late_after < timedelta(0):
            raise InputError("--data-late-after must not be negative")
        if self.max_failures < 0:
            raise InputError("--max-failures must not be negative")

    def stuck_limit(self, phase: Phase) -> timedelta:
        return self.stuck_after_by_phase.get(phase, self.stuck_after)


# -- problems ----------------------------------------------------------------------------


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


Problem = StuckRun | DataLate | TooManyFailures | ReactorSilent | BatchRegressed | NoDatasets


# -- report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckReport:
    """The problems and the figures behind them, as of ``checked_at`` (database time)."""

    checked_at: datetime
    policy: CheckPolicy
    problems: tuple[Problem, ...]
    runs_by_phase: Mapping[Phase, int]  # every phase, zeros included (gauges need them)
    failed_in_window: int
    live_reactors: int

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems_by_kind(self) -> dict[ProblemKind, int]:
        """Every kind, zeros included."""
        counts = dict.fromkeys(ProblemKind, 0)
        for problem in self.problems:
            counts[problem.kind] += 1
        return counts

    @property
    def summary(self) -> str:
        """One line: ``OK: ...`` when clean, else the problem counts by kind."""
        if self.problems:
            kinds = ", ".join(f"{n} {k}" for k, n in self.problems_by_kind.items() if n)
            return f"{len(self.problems)} problem(s): {kinds}"
        total = sum(self.runs_by_phase.values())
        phases = ", ".join(f"{n} {p}" for p, n in self.runs_by_phase.items() if n)
        reactors = f"{self.live_reactors} live reactor(s)" if self.live_reactors else "no reactor"
        return (
            f"OK: {total} run(s){f' ({phases})' if phases else ''}; "
            f"{self.failed_in_window} failed within {human(self.policy.window)} "
            f"(max {self.policy.max_failures}); {reactors}"
        )


def find_problems(
    db: Engine, policy: CheckPolicy, *, calendar: TradingCalendar, now: datetime | None = None
) -> CheckReport:
    """Everything ``prometheus check`` reports, as of the database's ``now()``.

    ``calendar`` carries the configured region -> exchange map (session closes for late
    data). ``now`` pins the instant instead of the database's clock: for tests at exact
    boundaries; production callers leave it None.
    """
    with db.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            at: datetime = conn.execute(query("check_clock"), {"at": now}).scalar_one()
            by_phase = dict.fromkeys(Phase, 0)
            for row in conn.execute(query("check_runs_by_phase")):
                by_phase[Phase(row.phase)] = row.runs
            reactors, live = _reactor_problems(conn, policy, at)
            failed = _failed_runs(conn, policy, at)
            problems: list[Problem] = [*reactors]
            if len(failed) > policy.max_failures:
                problems.append(TooManyFailures(policy.window, policy.max_failures, failed))
            problems += _stuck_runs(conn, policy, at)
            problems += _regressed_batches(conn)
            problems += _waiting_runs(conn, policy, at, calendar)
    problems.sort(key=lambda p: list(ProblemKind).index(p.kind))  # stable: keeps row order
    return CheckReport(
        checked_at=at,
        policy=policy,
        problems=tuple(problems),
        runs_by_phase=MappingProxyType(by_phase),
        failed_in_window=len(failed),
        live_reactors=live,
    )


def _reactor_problems(
    conn: Connection, policy: CheckPolicy, at: datetime
) -> tuple[list[ReactorSilent], int]:
    params = {
        "now": at,
        "silent_after_s": policy.reactor_silent_after.total_seconds(),
        "lookback_s": REACTOR_LOOKBACK.total_seconds(),
    }
    newest: dict[str, Heartbeat] = {}
    counts: dict[str, int] = {}
    for row in conn.execute(query("check_reactors"), params):
        newest[row.state] = Heartbeat(
            row.reactor_id, row.host, row.pid, row.last_seen_at, row.stopped_at
        )
        counts[row.state] = row.reactors
    live = counts.get("live", 0)
    if live:
        return [], live
    if (quiet := newest.get("silent")) is not None:
        silent = ReactorSilent(policy.reactor_silent_after, False, quiet, at - quiet.last_seen_at)
        return [silent], 0
    if not policy.require_reactor:  # no reactor expected here: cron timers, or retired
        return [], 0
    seen = [h for h in (newest.get("stopped"), newest.get("gone")) if h is not None]
    last = max(seen, key=lambda h: h.last_seen_at, default=None)
    silent_for = at - last.last_seen_at if last is not None else None
    return [ReactorSilent(policy.reactor_silent_after, True, last, silent_for)], 0


def _failed_runs(conn: Connection, policy: CheckPolicy, at: datetime) -> tuple[FailedRun, ...]:
    rows = conn.execute(
        query("check_recent_failures"), {"now": at, "window_s": policy.window.total_seconds()}
    )
    return tuple(FailedRun(**row._mapping) for row in rows)


def _stuck_runs(conn: Connection, policy: CheckPolicy, at: datetime) -> Iterator[StuckRun]:
    params: dict[str, Any] = {
        "now": at,
        "phases": [str(p) for p in STUCK_PHASES],
        "limits_s": [policy.stuck_limit(p).total_seconds() for p in STUCK_PHASES],
    }
    for row in conn.execute(query("check_stuck_runs"), params):
        m = row._mapping
        yield StuckRun(
            run_id=m["run_id"],
            as_of_date=m["as_of_date"],
            region=m["region"],
            phase=Phase(m["phase"]),
            phase_changed_at=m["phase_changed_at"],
            age=m["age"],
            limit=m["stuck_after"],
            attempts=m["attempts"],
            last_error=m["last_error"],
        )


def _regressed_batches(conn: Connection) -> Iterator[BatchRegressed]:
    for row in conn.execute(query("check_regressed_batches")):
        m = row._mapping
        yield BatchRegressed(**{**m, "phase": Phase(m["phase"])})


def _waiting_runs(
    conn: Connection, policy: CheckPolicy, at: datetime, calendar: TradingCalendar
) -> Iterator[DataLate | NoDatasets]:
    """NO_DATASETS for a waiting run nothing will flip; DATA_LATE for one whose data is
    overdue after its session's close. A region with no calendar mapping, or a date that
    is not a session of its exchange, has no close to measure from and is skipped."""
    for row in conn.execute(query("check_waiting_runs")):
        if not row.has_datasets:
            yield NoDatasets(row.run_id, row.as_of_date, row.region, row.phase_changed_at)
            continue
        try:
            session = calendar.session(row.region, row.as_of_date)
        except UnknownRegion:
            continue
        if session is None or at - session.close <= policy.data_late_after:
            continue
        missing = tuple(MissingDataset(m["dataset"], m["status"]) for m in row.missing)
        yield DataLate(
            run_id=row.run_id,
            as_of_date=row.as_of_date,
            region=row.region,
            exchange=session.exchange,
            close=session.close,
            late_by=at - session.close,
            limit=policy.data_late_after,
            missing=missing,
        )


# -- wording -----------------------------------------------------------------------------


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


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    if not lines:
        return "(none)"
    return lines[0] if len(lines[0]) <= _ERROR_CHARS else lines[0][: _ERROR_CHARS - 3] + "..."
