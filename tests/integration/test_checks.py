"""`prometheus check` on a real database: every problem kind, its exit code, its wording.

API tests pin the check's instant (``now=``) to hit boundaries exactly; CLI tests use the
database's own clock with ages far from any bound, so neither depends on timing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from prometheus.calendar import TradingCalendar
from prometheus.checks import (
    BatchRegressed,
    CheckPolicy,
    CheckReport,
    DataLate,
    MissingDataset,
    NoDatasets,
    ProblemKind,
    ReactorSilent,
    StuckRun,
    TooManyFailures,
    find_problems,
)
from prometheus.cli.app import run
from prometheus.pipeline import overrides
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Run, ensure_run, get_or_create_run, run_events, update_phase

CAL = TradingCalendar()
TUESDAY = date(2026, 11, 24)  # a full XNYS session
CLOSE = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)  # its close, 16:00 New York
T = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a fixed instant for pinned checks


def sql(engine: Engine, statement: str, **params: Any) -> None:
    """A test's direct write. Ageing events edits the append-only trail, which only the
    tables' owner can, by switching its trigger off for this one transaction."""
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE engine_run_events DISABLE TRIGGER USER"))
        conn.execute(text(statement), params)
        conn.execute(text("ALTER TABLE engine_run_events ENABLE TRIGGER USER"))


def check(engine: Engine, *, now: datetime | None = None, **policy: Any) -> CheckReport:
    return find_problems(engine, CheckPolicy(**policy), calendar=CAL, now=now)


def kinds(report: CheckReport) -> list[ProblemKind]:
    return [p.kind for p in report.problems]


def cli(db_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(["--database-url", db_url, "check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def ready_run(engine: Engine, day: date = TUESDAY, region: str = "US") -> Run:
    return ensure_run(engine, day, region, data_ready=True, actor="test")


def require(engine: Engine, region: str, *datasets: str) -> None:
    for dataset in datasets:
        sql(engine, "INSERT INTO region_datasets VALUES (:r, :d)", r=region, d=dataset)


def batch(
    engine: Engine, dataset: str, status: str, day: date = TUESDAY, region: str = "US"
) -> None:
    sql(
        engine,
        "INSERT INTO ingestion_batches (dataset, as_of_date, region, status) "
        "VALUES (:d, :day, :r, :s) "
        "ON CONFLICT (dataset, as_of_date, region) DO UPDATE SET status = EXCLUDED.status",
        d=dataset,
        day=day,
        r=region,
        s=status,
    )


def _stopped_at(engine: Engine, reactor_id: str) -> str:
    with engine.connect() as conn:
        at = conn.execute(
            text("SELECT stopped_at FROM reactor_heartbeats WHERE reactor_id = :id"),
            {"id": reactor_id},
        ).scalar_one()
    return str(at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))


def heartbeat(engine: Engine, reactor_id: str, age: str, *, stopped: bool = False) -> None:
    """A reactor row last seen ``age`` ago by the database's clock (a Postgres interval)."""
    sql(
        engine,
        "INSERT INTO reactor_heartbeats (reactor_id, host, pid, started_at, last_seen_at, "
        "stopped_at) SELECT :id, 'box1', 4242, t - interval '1 day', t, "
        "CASE WHEN :stopped THEN t END FROM (SELECT now() - CAST(:age AS interval) AS t) s",
        id=reactor_id,
        age=age,
        stopped=stopped,
    )


# -- all clear ---------------------------------------------------------------------------


def test_an_empty_database_is_all_clear(engine: Engine) -> None:
    report = check(engine)
    assert report.ok
    assert report.problems == ()
    assert report.summary == "OK: 0 run(s); 0 failed within 1d (max 0); no reactor"
    assert dict(report.runs_by_phase) == dict.fromkeys(Phase, 0)
    assert report.problems_by_kind == dict.fromkeys(ProblemKind, 0)


def test_all_clear_exits_0_with_one_summary_line(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ready_run(engine)
    update_phase(engine, ready_run(engine, date(2026, 11, 23)), Phase.SIGNALS_DONE, actor="t")
    heartbeat(engine, "r1", "5 seconds")
    code, out, err = cli(db_url, capsys)
    assert (code, err) == (0, "")
    assert out == (
        "OK: 2 run(s) (1 DATA_READY, 1 SIGNALS_DONE); 0 failed within 1d (max 0); "
        "1 live reactor(s)\n"
    )


def test_check_refuses_a_database_that_is_not_upgraded(
    empty_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(empty_db_url, capsys)
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "prometheus db upgrade" in err


# -- STUCK -------------------------------------------------------------------------------


def test_a_workable_phase_unchanged_past_its_limit_is_stuck(engine: Engine) -> None:
    run_ = ready_run(engine)
    # The guard trigger rewrites phase_changed_at only when the phase changes.
    sql(
        engine,
        "UPDATE engine_runs SET phase_changed_at = :t WHERE run_id = :id",
        t=T,
        id=run_.run_id,
    )

    assert check(engine, now=T + timedelta(hours=2)).ok  # "longer than": the bound is fine
    report = check(engine, now=T + timedelta(hours=2, seconds=1))
    assert report.problems == (
        StuckRun(
            run_id=run_.run_id,
            as_of_date=TUESDAY,
            region="US",
            phase=Phase.DATA_READY,
            phase_changed_at=T,
            age=timedelta(hours=2, seconds=1),
            limit=timedelta(hours=2),
            attempts=0,
            last_error=None,
        ),
    )
    assert report.problems[0].message == (
        f"run {run_.run_id} 2026-11-24 US in DATA_READY for 2h00m (limit 2h)"
    )
    assert report.problems_by_kind[ProblemKind.STUCK] == 1


def test_per_phase_limits_override_the_default(engine: Engine) -> None:
    ready = ready_run(engine)
    signals = update_phase(
        engine, ready_run(engine, date(2026, 11, 23)), Phase.SIGNALS_DONE, actor="t"
    )
    sql(engine, "UPDATE engine_runs SET phase_changed_at = :t", t=T)
    at = T + timedelta(hours=3)

    assert stuck_ids(check(engine, now=at)) == [ready.run_id, signals.run_id]
    relaxed = check(engine, now=at, stuck_after_by_phase={Phase.DATA_READY: timedelta(hours=4)})
    assert stuck_ids(relaxed) == [signals.run_id]
    strict = check(
        engine,
        now=at,
        stuck_after=timedelta(hours=5),
        stuck_after_by_phase={Phase.SIGNALS_DONE: timedelta(minutes=1)},
    )
    (problem,) = strict.problems
    assert isinstance(problem, StuckRun)
    assert (problem.run_id, problem.limit) == (signals.run_id, timedelta(minutes=1))


def stuck_ids(report: CheckReport) -> list[int]:
    assert set(kinds(report)) <= {ProblemKind.STUCK}
    return [p.run_id for p in report.problems if isinstance(p, StuckRun)]


def test_waiting_and_terminal_runs_are_never_stuck(engine: Engine) -> None:
    require(engine, "US", "prices")
    get_or_create_run(engine, TUESDAY, "US")
    done = ready_run(engine, date(2026, 11, 23))
    for phase in (Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE, Phase.COMPLETED):
        done = update_phase(engine, done, phase, actor="t")
    sql(engine, "UPDATE engine_runs SET phase_changed_at = :t", t=T)
    assert check(engine, now=T + timedelta(days=30), data_late_after=timedelta(days=365)).ok


def test_a_stuck_run_shows_its_failed_attempts(engine: Engine) -> None:
    run_ = ready_run(engine)
    sql(
        engine,
        "UPDATE engine_runs SET phase_changed_at = :t, attempts = 2, "
        "last_error = 'ValueError: no prices for 2026-11-24' || chr(10) || 'second line' "
        "WHERE run_id = :id",
        t=T,
        id=run_.run_id,
    )
    (problem,) = check(engine, now=T + timedelta(hours=3, minutes=5)).problems
    assert problem.message == (
        f"run {run_.run_id} 2026-11-24 US in DATA_READY for 3h05m (limit 2h); "
        "2 failed attempt(s), last error: ValueError: no prices for 2026-11-24"
    )


def test_cli_stuck_exit_1_and_stuck_after_forms(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_ = ready_run(engine)
    sql(engine, "UPDATE engine_runs SET phase_changed_at = now() - interval '3 hours'")

    code, out, err = cli(db_url, capsys)
    assert code == 1
    assert out.startswith(f"STUCK: run {run_.run_id} 2026-11-24 US in DATA_READY for 3h")
    assert out.endswith(" (limit 2h)\n")
    assert len(out.splitlines()) == 1
    assert err == "prometheus: error: 1 problem(s): 1 STUCK\n"

    assert cli(db_url, capsys, "--stuck-after", "4h")[0] == 0
    assert cli(db_url, capsys, "--stuck-after", "14400")[0] == 0
    assert cli(db_url, capsys, "--stuck-after", "DATA_READY=4h")[0] == 0
    assert cli(db_url, capsys, "--stuck-after", "SIGNALS_DONE=1m")[0] == 1
    assert cli(db_url, capsys, "--stuck-after", "4h", "--stuck-after", "data_ready=1h")[0] == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--stuck-after", "WAITING_FOR_DATA=1h"], "its lateness is --data-late-after"),
        (["--stuck-after", "2 hours"], "invalid duration '2 hours'"),
        (["--stuck-after", "1h", "--stuck-after", "2h"], "given twice"),
        (["--window", "0s"], "--window must be longer than 0s"),
        (["--max-failures", "-1"], "--max-failures"),
        (["--format", "xml"], "xml"),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(
    db_url: str, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    code, out, err = cli(db_url, capsys, *args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert error in err
    assert "Traceback" not in err


# -- DATA_LATE ---------------------------------------------------------------------------


def test_waiting_past_the_close_plus_the_bound_is_late_data(engine: Engine) -> None:
    require(engine, "US", "prices", "refdata")
    run_ = get_or_create_run(engine, TUESDAY, "US")
    batch(engine, "prices", "RUNNING")

    assert check(engine, now=CLOSE + timedelta(hours=4)).ok
    report = check(engine, now=CLOSE + timedelta(hours=4, minutes=30))
    assert report.problems == (
        DataLate(
            run_id=run_.run_id,
            as_of_date=TUESDAY,
            region="US",
            exchange="XNYS",
            close=CLOSE,
            late_by=timedelta(hours=4, minutes=30),
            limit=timedelta(hours=4),
            missing=(MissingDataset("prices", "RUNNING"), MissingDataset("refdata", None)),
        ),
    )
    assert report.problems[0].message == (
        f"run {run_.run_id} 2026-11-24 US still WAITING_FOR_DATA 4h30m after the XNYS close "
        "at 2026-11-24 21:00 UTC (limit 4h); waiting for prices (RUNNING), refdata (no batch)"
    )
    assert check(engine, now=CLOSE + timedelta(hours=5), data_late_after=timedelta(hours=6)).ok


def test_late_data_is_measured_from_the_configured_exchange(engine: Engine) -> None:
    require(engine, "ZZ", "prices")
    get_or_create_run(engine, TUESDAY, "ZZ")
    far_later = CLOSE + timedelta(days=3)
    # A region with no calendar mapping has no close: skipped, and no error.
    assert check(engine, now=far_later).ok
    london = TradingCalendar({"ZZ": "XLON"})  # London closes 16:30 UTC in November
    at = datetime(2026, 11, 24, 20, 31, tzinfo=UTC)
    (late,) = find_problems(engine, CheckPolicy(), calendar=london, now=at).problems
    assert isinstance(late, DataLate)
    assert (late.exchange, late.close, late.late_by) == (
        "XLON",
        datetime(2026, 11, 24, 16, 30, tzinfo=UTC),
        timedelta(hours=4, minutes=1),
    )


def test_late_data_is_reported_years_after_the_calendar_was_first_used(engine: Engine) -> None:
    """A reactor (and its check) outlives the calendar window it loaded at start: a run
    three years on is still measured against its session's close."""
    CAL.is_session("US", TUESDAY)  # the window a long-running process loaded first
    day = date(datetime.now(UTC).year + 3, 11, 8)
    day += timedelta(days=(1 - day.weekday()) % 7)  # the 2nd Tuesday of November: trades
    close = datetime.combine(day, time(16), tzinfo=ZoneInfo("America/New_York"))
    require(engine, "US", "prices")
    run_ = get_or_create_run(engine, day, "US")
    (late,) = check(engine, now=close + timedelta(hours=5)).problems
    assert isinstance(late, DataLate)
    assert (late.run_id, late.close, late.late_by) == (run_.run_id, close, timedelta(hours=5))


def test_a_run_on_a_day_without_a_session_has_no_close_to_be_late_after(engine: Engine) -> None:
    require(engine, "US", "prices")
    get_or_create_run(engine, date(2026, 11, 26), "US")  # Thanksgiving, forced in by hand
    assert check(engine, now=datetime(2026, 12, 1, tzinfo=UTC)).ok


def test_a_run_forced_back_to_waiting_with_its_data_complete_is_ready_again(
    engine: Engine,
) -> None:
    """Nothing else would look at it again: the database makes it DATA_READY at once, as
    it does a run created after its data, so no DATA_LATE can ever follow."""
    require(engine, "US", "prices")
    batch(engine, "prices", "COMPLETE")  # the trigger makes the run DATA_READY ...
    run_ = overrides.set_phase(  # ... an operator forces it back, and it is ready again
        engine, TUESDAY, "US", Phase.WAITING_FOR_DATA, actor="t", reason="test", force=True
    )
    assert run_.phase is Phase.DATA_READY
    last = run_events(engine, run_.run_id)[-1]
    assert (last.from_phase, last.to_phase, last.actor) == ("WAITING_FOR_DATA", "DATA_READY", "db")
    assert check(engine, now=CLOSE + timedelta(hours=5)).problems == ()


def test_cli_late_data(engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    require(engine, "US", "prices")
    run_ = get_or_create_run(engine, TUESDAY, "US")  # closed long before any run of this test
    code, out, _ = cli(db_url, capsys)
    assert code == 1
    assert out.startswith(f"DATA_LATE: run {run_.run_id} 2026-11-24 US still WAITING_FOR_DATA ")
    assert out.endswith("waiting for prices (no batch)\n")
    assert cli(db_url, capsys, "--data-late-after", "3650d")[0] == 0


# -- NO_DATASETS -------------------------------------------------------------------------


def test_a_waiting_run_in_a_region_that_requires_nothing_will_never_move(engine: Engine) -> None:
    require(engine, "EU", "prices")  # another region's requirements do not count
    run_ = get_or_create_run(engine, TUESDAY, "US")
    report = check(engine, now=CLOSE + timedelta(days=2))
    assert report.problems == (NoDatasets(run_.run_id, TUESDAY, "US", run_.phase_changed_at),)
    assert report.problems[0].message.startswith(
        f"run {run_.run_id} 2026-11-24 US is WAITING_FOR_DATA but region US requires no "
        "datasets: nothing will make it DATA_READY"
    )
    # Once the region requires something, it is ordinary late data instead.
    require(engine, "US", "prices")
    assert kinds(check(engine, now=CLOSE + timedelta(days=2))) == [ProblemKind.DATA_LATE]


def test_cli_no_datasets(engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_ = get_or_create_run(engine, date(2026, 11, 25), "JP")
    code, out, _ = cli(db_url, capsys)
    assert code == 1
    assert out.startswith(f"NO_DATASETS: run {run_.run_id} 2026-11-25 JP is WAITING_FOR_DATA")


# -- FAILURES ----------------------------------------------------------------------------


def failed_runs(engine: Engine, *days: date) -> list[Run]:
    return [update_phase(engine, ready_run(engine, d), Phase.FAILED, actor="t") for d in days]


def failed_at(engine: Engine, run_id: int) -> datetime:
    with engine.connect() as conn:
        at: datetime = conn.execute(
            text(
                "SELECT max(at) FROM engine_run_events WHERE run_id = :id AND to_phase = 'FAILED'"
            ),
            {"id": run_id},
        ).scalar_one()
        return at


def test_failures_within_the_window_above_the_bound(engine: Engine) -> None:
    first, second = failed_runs(engine, date(2026, 11, 23), TUESDAY)
    report = check(engine)
    assert report.failed_in_window == 2
    (problem,) = report.problems
    assert isinstance(problem, TooManyFailures)
    assert [r.run_id for r in problem.runs] == [first.run_id, second.run_id]
    assert problem.message == (
        f"2 run(s) failed within 1d (max 0): run {first.run_id} 2026-11-23 US, "
        f"run {second.run_id} 2026-11-24 US"
    )
    assert check(engine, max_failures=1).problems_by_kind[ProblemKind.FAILURES] == 1
    tolerated = check(engine, max_failures=2)
    assert tolerated.ok
    assert tolerated.failed_in_window == 2


def test_failures_older_than_the_window_do_not_count(engine: Engine) -> None:
    (run_,) = failed_runs(engine, TUESDAY)
    at = failed_at(engine, run_.run_id)
    assert check(engine, now=at + timedelta(hours=23, minutes=59)).failed_in_window == 1
    assert check(engine, now=at + timedelta(hours=24)).failed_in_window == 0
    assert check(engine, now=at + timedelta(hours=24)).ok
    assert (
        check(engine, now=at + timedelta(hours=30), window=timedelta(days=2)).failed_in_window == 1
    )


def test_a_retried_run_has_been_dealt_with(engine: Engine) -> None:
    failed_runs(engine, date(2026, 11, 23), TUESDAY)
    overrides.retry(engine, TUESDAY, "US", actor="t", reason="data fixed")
    report = check(engine)
    assert report.failed_in_window == 1
    (problem,) = report.problems
    assert isinstance(problem, TooManyFailures)
    assert [r.as_of_date for r in problem.runs] == [date(2026, 11, 23)]


def test_a_batch_regression_on_a_failed_run_is_not_a_failure(engine: Engine) -> None:
    """batch_regressed events carry to_phase = the run's phase, FAILED included."""
    require(engine, "US", "prices")
    batch(engine, "prices", "COMPLETE")
    update_phase(engine, ready_run(engine), Phase.FAILED, actor="t")
    sql(engine, "UPDATE engine_run_events SET at = at - interval '3 days'")  # failed long ago
    batch(engine, "prices", "RUNNING")  # ... and its batch regresses now
    with engine.connect() as conn:
        recent = conn.execute(
            text(
                "SELECT kind FROM engine_run_events "
                "WHERE to_phase = 'FAILED' AND at > now() - interval '1 day'"
            )
        ).scalars()
        assert list(recent) == ["batch_regressed"]
    report = check(engine)
    assert report.failed_in_window == 0
    assert kinds(report) == [ProblemKind.BATCH_REGRESSED]


def test_cli_failures_window_and_max(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    failed_runs(engine, date(2026, 11, 23), TUESDAY)
    code, out, err = cli(db_url, capsys)
    assert code == 1
    assert out.startswith("FAILURES: 2 run(s) failed within 1d (max 0): run ")
    assert err == "prometheus: error: 1 problem(s): 1 FAILURES\n"
    code, out, _ = cli(db_url, capsys, "--max-failures", "2")
    assert code == 0
    assert out == "OK: 2 run(s) (2 FAILED); 2 failed within 1d (max 2); no reactor\n"

    sql(engine, "UPDATE engine_run_events SET at = at - interval '2 days'")
    assert cli(db_url, capsys)[0] == 0
    assert cli(db_url, capsys, "--window", "3d")[0] == 1


# -- REACTOR_SILENT ----------------------------------------------------------------------


def test_no_reactor_is_fine_unless_required(engine: Engine) -> None:
    assert check(engine).ok
    (problem,) = check(engine, require_reactor=True).problems
    assert problem == ReactorSilent(timedelta(minutes=2), True, None, None)
    assert problem.message == (
        "no reactor heartbeat within 2m; no reactor has ever run here (--require-reactor)"
    )


def test_a_reactor_that_went_quiet_is_silent(engine: Engine) -> None:
    heartbeat(engine, "r-quiet", "10 minutes")
    (problem,) = check(engine).problems
    assert isinstance(problem, ReactorSilent)
    assert problem.last is not None
    assert (problem.last.reactor_id, problem.required) == ("r-quiet", False)
    assert problem.silent_for is not None and problem.silent_for >= timedelta(minutes=10)
    assert problem.message.startswith(
        "no reactor heartbeat within 2m; reactor r-quiet (host box1, pid 4242) was last seen 10m"
    )
    assert check(engine, reactor_silent_after=timedelta(minutes=15)).live_reactors == 1
    assert check(engine, reactor_silent_after=timedelta(minutes=15)).ok


def test_one_live_reactor_is_enough(engine: Engine) -> None:
    heartbeat(engine, "r-dead", "10 minutes")
    heartbeat(engine, "r-live", "3 seconds")
    report = check(engine, require_reactor=True)
    assert report.ok
    assert report.live_reactors == 1


def test_a_clean_stop_nobody_restarted_is_reported_too(engine: Engine) -> None:
    """SPEC: a reactor whose heartbeat stopped is a problem where reactors heartbeated
    within the last day; a stop is no less a stop for being clean."""
    heartbeat(engine, "r-stopped", "10 minutes", stopped=True)
    (problem,) = check(engine).problems
    assert problem.message == (
        "no reactor heartbeat within 2m; the last, reactor r-stopped (host box1, pid 4242), "
        f"stopped cleanly at {_stopped_at(engine, 'r-stopped')}"
    )


def test_a_clean_stop_more_than_a_day_ago_is_no_longer_expected(engine: Engine) -> None:
    heartbeat(engine, "r-retired", "2 days", stopped=True)
    assert check(engine).ok
    (problem,) = check(engine, require_reactor=True).problems
    assert problem.message.endswith(" (--require-reactor)")


def test_a_reactor_quiet_for_more_than_a_day_is_no_longer_expected(engine: Engine) -> None:
    heartbeat(engine, "r-old", "2 days")
    assert check(engine).ok
    (problem,) = check(engine, require_reactor=True).problems
    assert isinstance(problem, ReactorSilent)
    assert problem.last is not None and problem.last.reactor_id == "r-old"
    assert "was last seen 2d ago" in problem.message


def test_the_newest_quiet_reactor_is_reported(engine: Engine) -> None:
    heartbeat(engine, "r-older", "20 minutes")
    heartbeat(engine, "r-stopped", "10 minutes", stopped=True)
    heartbeat(engine, "r-newer", "5 minutes")
    (problem,) = check(engine).problems
    assert isinstance(problem, ReactorSilent)
    assert problem.last is not None
    assert problem.last.reactor_id == "r-newer"


def test_cli_reactor_silent(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(db_url, capsys)[0] == 0
    code, out, _ = cli(db_url, capsys, "--require-reactor")
    assert code == 1
    assert out == (
        "REACTOR_SILENT: no reactor heartbeat within 2m; no reactor has ever run here "
        "(--require-reactor)\n"
    )
    heartbeat(engine, "r1", "10 minutes")
    code, out, _ = cli(db_url, capsys)
    assert code == 1
    assert out.startswith("REACTOR_SILENT: no reactor heartbeat within 2m; reactor r1 ")
    assert cli(db_url, capsys, "--reactor-silent-after", "15m")[0] == 0


# -- BATCH_REGRESSED ---------------------------------------------------------------------


def test_a_required_batch_leaving_complete_after_the_run_started(engine: Engine) -> None:
    require(engine, "US", "prices")
    batch(engine, "prices", "COMPLETE")  # the trigger creates the run, DATA_READY
    batch(engine, "extras", "RUNNING")  # not required: never a problem
    assert check(engine).ok

    batch(engine, "prices", "RUNNING")
    (problem,) = check(engine).problems
    assert isinstance(problem, BatchRegressed)
    assert (problem.phase, problem.dataset, problem.status) == (
        Phase.DATA_READY,
        "prices",
        "RUNNING",
    )
    assert problem.message == (
        f"run {problem.run_id} 2026-11-24 US is DATA_READY but its required batch prices is "
        "RUNNING: results may not match the data"
    )
    batch(engine, "prices", "COMPLETE")
    assert check(engine).ok


def test_an_incomplete_batch_of_a_waiting_run_is_just_waiting(engine: Engine) -> None:
    require(engine, "US", "prices")
    get_or_create_run(engine, TUESDAY, "US")
    batch(engine, "prices", "FAILED")
    assert check(engine, now=CLOSE).ok


def test_cli_batch_regressed(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    require(engine, "US", "prices")
    batch(engine, "prices", "COMPLETE")
    batch(engine, "prices", "FAILED")
    code, out, _ = cli(db_url, capsys)
    assert code == 1
    assert out.startswith("BATCH_REGRESSED: run ")
    assert "its required batch prices is FAILED" in out


# -- the report as a whole ---------------------------------------------------------------


def scenario(engine: Engine) -> dict[str, Run]:
    """One problem of every kind, each far from its bound by the database's clock."""
    heartbeat(engine, "r1", "10 minutes")
    (failed,) = failed_runs(engine, date(2026, 11, 20))
    stuck = ready_run(engine, date(2026, 11, 19))
    sql(
        engine,
        "UPDATE engine_runs SET phase_changed_at = now() - interval '5 hours' WHERE run_id = :id",
        id=stuck.run_id,
    )
    require(engine, "US", "prices")
    batch(engine, "prices", "COMPLETE")
    batch(engine, "prices", "RUNNING")
    late = get_or_create_run(engine, date(2026, 11, 23), "US")
    lonely = get_or_create_run(engine, date(2026, 11, 23), "JP")
    sql(
        engine,
        "INSERT INTO engine_run_holds (region, reason, held_by, held_at)"
        " VALUES ('EU', 'forgotten', 'cli:ops', now() - interval '2 days')",
    )
    return {"failed": failed, "stuck": stuck, "late": late, "lonely": lonely}


#: Every kind one database can show at once: a deaf listener needs a live reactor (so none
#: is silent), a full NOTIFY queue a session that holds it; tests/integration/
#: test_listener_health.py has theirs.
AT_ONCE = [k for k in ProblemKind if k not in (ProblemKind.LISTENER_DEAF, ProblemKind.NOTIFY_QUEUE)]


def test_every_kind_at_once_in_a_fixed_order_with_figures(engine: Engine) -> None:
    runs = scenario(engine)
    report = check(engine)
    assert kinds(report) == AT_ONCE
    expected = dict.fromkeys(ProblemKind, 0) | dict.fromkeys(AT_ONCE, 1)
    assert report.problems_by_kind == expected
    assert dict(report.runs_by_phase) == {
        Phase.WAITING_FOR_DATA: 2,
        Phase.DATA_READY: 2,
        Phase.SIGNALS_DONE: 0,
        Phase.UNIVERSES_DONE: 0,
        Phase.COMPLETED: 0,
        Phase.FAILED: 1,
    }
    assert report.summary == (
        "7 problem(s): 1 REACTOR_SILENT, 1 FAILURES, 1 STUCK, 1 HOLD_STALE, "
        "1 BATCH_REGRESSED, 1 DATA_LATE, 1 NO_DATASETS"
    )
    stuck = report.problems[2]
    assert isinstance(stuck, StuckRun)
    assert stuck.run_id == runs["stuck"].run_id


def test_json_output_parses_and_carries_the_figures(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = scenario(engine)
    code, out, err = cli(db_url, capsys, "--format", "json", "--stuck-after", "SIGNALS_DONE=30m")
    assert code == 1
    assert err.startswith("prometheus: error: 7 problem(s): ")
    doc: dict[str, Any] = json.loads(out)
    assert doc["status"] == "problems"
    assert doc["runs_by_phase"]["WAITING_FOR_DATA"] == 2
    assert doc["problems_by_kind"] == {
        **dict.fromkeys([str(k) for k in ProblemKind], 0),
        **dict.fromkeys([str(k) for k in AT_ONCE], 1),
    }
    assert doc["failed_in_window"] == 1
    assert doc["live_reactors"] == 0
    assert 0 <= doc["notify_queue_usage"] < 0.5
    assert doc["policy"] == {
        "stuck_after_s": 7200.0,
        "stuck_after_by_phase_s": {"SIGNALS_DONE": 1800.0},
        "window_s": 86400.0,
        "max_failures": 0,
        "data_late_after_s": 14400.0,
        "reactor_silent_after_s": 120.0,
        "require_reactor": False,
        "max_notify_queue": 0.5,
        "max_hold_age_s": 86400.0,
    }
    datetime.fromisoformat(doc["checked_at"])
    by_kind: Mapping[str, dict[str, Any]] = {p["kind"]: p for p in doc["problems"]}
    stuck = by_kind["STUCK"]
    assert stuck["run_id"] == runs["stuck"].run_id
    assert stuck["phase"] == "DATA_READY"
    assert stuck["limit_s"] == 7200.0
    assert stuck["age_s"] >= 5 * 3600
    assert stuck["message"].startswith(f"run {runs['stuck'].run_id} 2026-11-19 US in DATA_READY")
    assert by_kind["DATA_LATE"]["close"] == "2026-11-23T21:00:00+00:00"
    assert by_kind["DATA_LATE"]["missing"] == [{"dataset": "prices", "status": None}]
    assert [r["run_id"] for r in by_kind["FAILURES"]["runs"]] == [runs["failed"].run_id]
    assert by_kind["REACTOR_SILENT"]["last"]["reactor_id"] == "r1"
    assert by_kind["NO_DATASETS"]["region"] == "JP"
    assert by_kind["HOLD_STALE"]["scope"] == "EU"
    assert by_kind["HOLD_STALE"]["age_s"] >= 2 * 86400


def test_json_all_clear(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(db_url, capsys, "--format", "json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["status"] == "ok"
    assert doc["problems"] == []
    assert doc["summary"].startswith("OK: 0 run(s)")
