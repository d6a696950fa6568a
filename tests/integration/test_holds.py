"""Holds: a held run is never claimed, by any path that advances runs; holds are audited,
shown, checked, and their release wakes the reactors at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from prometheus.calendar import TradingCalendar
from prometheus.checks import CheckPolicy, ProblemKind, find_problems
from prometheus.config import Settings, libpq_url
from prometheus.db.driver import driver_sql
from prometheus.db.queries import query
from prometheus.errors import InputError
from prometheus.orchestration.steering import advance
from prometheus.pipeline.holds import HoldScope, place_hold, release_holds
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import (
    Outcome,
    advance_all,
    advance_next,
    advance_run,
    get_or_create_run,
    get_run,
)
from prometheus.scripts import run_engine_state
from tests.support import reactor_tasks
from tests.support.cli_runner import invoke, invoke_main
from tests.support.inprocess import ReactorThreads
from tests.support.placing import place
from tests.support.runs import make_ready, wait_phase
from tests.support.waiting import wait_until

DAY = date(2026, 11, 24)  # a Tuesday
HOUR = timedelta(hours=1)


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    return replace(settings, phase_tasks=reactor_tasks.MODULE, sweep_interval=HOUR)


@pytest.fixture
def raw(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


def hold(engine: Engine, region: str = "US", **scope: Any) -> int:
    placed, created = place_hold(
        engine, HoldScope(region, **scope), actor="cli:ops", reason="bad vendor file"
    )
    assert created
    return placed.hold_id


def phase_of(engine: Engine, run_id: int) -> Phase:
    run = get_run(engine, run_id)
    assert run is not None
    return run.phase


# -- the rule: what a hold covers ------------------------------------------------------------


def test_the_claims_take_exactly_the_runs_the_coverage_view_leaves_free(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    """The hold test is written out in both claims (for speed) and once in the view:
    over runs of two regions in every phase and holds of every shape, all three agree."""
    runs = []
    for offset in range(6):
        for region in ("US", "EU"):
            run = get_or_create_run(engine, DAY + timedelta(days=offset), region, actor="t")
            runs.append(place(engine, run, list(Phase)[offset]))
    hold(engine, "US", phase=Phase.SIGNALS_DONE)
    hold(engine, "EU", from_date=DAY + timedelta(days=1), to_date=DAY + timedelta(days=2))
    hold(engine, "EU", from_date=DAY + timedelta(days=3))
    released = hold(engine, "US", to_date=DAY + timedelta(days=1))
    release_holds(engine, actor="cli:ops", reason="over", hold_ids=[released])

    free = {
        row[0]
        for row in raw.execute("SELECT run_id FROM engine_runs_with_holds WHERE hold_id IS NULL")
    }
    held = {r.run_id for r in runs} - free
    assert held, "the setup holds some runs"
    with raw.transaction(force_rollback=True):
        claimed = raw.execute(
            driver_sql(query("claim_runs")), {"run_ids": [r.run_id for r in runs]}
        ).fetchall()
    assert {row[0] for row in claimed} == free
    with raw.transaction(force_rollback=True):
        due = raw.execute(
            driver_sql(query("claim_due_runs")), {"taken": [], "limit": 100}
        ).fetchall()
    workable = {r.run_id for r in runs if r.phase in (Phase.DATA_READY, Phase.SIGNALS_DONE)}
    workable |= {r.run_id for r in runs if r.phase is Phase.UNIVERSES_DONE}
    assert {row[0] for row in due} == workable & free


# -- every path that advances runs ----------------------------------------------------------


def test_advance_run_and_advance_next_leave_a_held_run_alone(
    engine: Engine, quiet: Settings
) -> None:
    run_id = make_ready(engine, DAY)
    hold_id = hold(engine)
    step = advance_run(engine, run_id, settings=quiet, actor="t")
    assert step.outcome is Outcome.HELD
    assert step.run is not None and step.run.hold_id == hold_id
    assert advance_next(engine, settings=quiet, actor="t") is None
    assert phase_of(engine, run_id) is Phase.DATA_READY
    release_holds(engine, actor="cli:ops", reason="fixed", hold_ids=[hold_id])
    assert advance_run(engine, run_id, settings=quiet, actor="t").outcome is Outcome.ADVANCED


def test_a_phase_hold_stops_the_run_before_that_phase_only(engine: Engine, quiet: Settings) -> None:
    """Hold the books: the run goes through signals and universes, and waits before books."""
    run_id = make_ready(engine, DAY)
    hold(engine, phase=Phase.UNIVERSES_DONE)
    steps = [advance_run(engine, run_id, settings=quiet, actor="t") for _ in range(3)]
    assert [s.outcome for s in steps] == [Outcome.ADVANCED, Outcome.ADVANCED, Outcome.HELD]
    assert phase_of(engine, run_id) is Phase.UNIVERSES_DONE


def test_advance_all_skips_held_runs_and_steps_the_others(engine: Engine, quiet: Settings) -> None:
    held = make_ready(engine, DAY)
    free = make_ready(engine, DAY, "EU")
    hold(engine, from_date=DAY, to_date=DAY)
    steps = advance_all(engine, settings=quiet, actor="t")
    assert [s.run.run_id for s in steps if s.run] == [free]
    assert phase_of(engine, held) is Phase.DATA_READY


def test_the_cli_and_the_seed_script_leave_a_held_run_alone(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = make_ready(engine, DAY)
    hold(engine)
    target = ["--as-of", DAY.isoformat(), "--region", "US"]
    shown = invoke(capsys, db_url, "runs", "advance", *target)
    assert shown.code == 0, shown.err
    assert shown.out.rstrip().endswith("US: held, now DATA_READY")
    assert "is held" in shown.err
    assert invoke(capsys, db_url, "runs", "advance-all").out.startswith("advanced 0 run(s)")
    seed = [f"--database-url={db_url}"]
    assert invoke_main(capsys, run_engine_state.main, [*seed, "--advance-all"]).code == 0
    assert invoke_main(capsys, run_engine_state.main, [*seed, *target, "--advance"]).code == 0
    assert phase_of(engine, run_id) is Phase.DATA_READY


def test_the_orchestrator_helpers_leave_a_held_run_alone(engine: Engine, quiet: Settings) -> None:
    run_id = make_ready(engine, DAY)
    hold(engine, phase=Phase.SIGNALS_DONE)
    step = advance(engine, DAY, "US", settings=quiet, actor="airflow:t", until_settled=True)
    assert step.outcome is Outcome.HELD
    assert phase_of(engine, run_id) is Phase.SIGNALS_DONE


def test_a_reactor_leaves_held_runs_alone_and_takes_them_at_once_when_released(
    engine: Engine, quiet: Settings, reactors: ReactorThreads
) -> None:
    """With an hour between sweeps, only the release's notification can move the held
    runs: the reactor does not sweep again, and they complete."""
    books_held = make_ready(engine, DAY)
    region_held = make_ready(engine, DAY, "EU")
    free = make_ready(engine, DAY, "JP")
    books = hold(engine, phase=Phase.UNIVERSES_DONE)
    eu = hold(engine, "EU")
    running = reactors.start(quiet)
    running.wait_ready()
    notified = make_ready(engine, DAY + timedelta(days=1), "JP")  # served at once
    for run_id in (free, notified):
        wait_phase(engine, run_id)
    wait_phase(engine, books_held, Phase.UNIVERSES_DONE)
    assert phase_of(engine, region_held) is Phase.DATA_READY
    busy: list[int] = []

    def idle() -> bool:  # every worker back asleep, three looks in a row
        busy.append(running.reactor.dispatcher.in_progress)
        return busy[-3:] == [0, 0, 0]

    wait_until(idle, interval=0.05, what="the reactor idle")
    sweeps = running.sample("prometheus_sweeps_total")

    release_holds(engine, actor="cli:ops", reason="data fixed", hold_ids=[books, eu])
    wait_phase(engine, books_held)
    wait_phase(engine, region_held)
    assert running.sample("prometheus_sweeps_total") == sweeps
    assert running.sample("prometheus_notifications_total", {"channel": "prometheus_holds"}) == 1


# -- the hold's record ----------------------------------------------------------------------


def test_a_hold_records_who_why_and_when_and_is_only_ever_released_once(
    engine: Engine, raw: psycopg.Connection[Any]
) -> None:
    hold_id = hold(engine, phase=Phase.SIGNALS_DONE, from_date=DAY)
    (released,) = release_holds(
        engine, actor="cli:lead", reason="vendor resent", hold_ids=[hold_id]
    )
    assert (released.held_by, released.reason) == ("cli:ops", "bad vendor file")
    assert (released.released_by, released.release_reason) == ("cli:lead", "vendor resent")
    assert released.released_at is not None and released.released_at >= released.held_at
    for statement in (
        "UPDATE engine_run_holds SET reason = 'edited'",
        "UPDATE engine_run_holds SET released_by = 'x', release_reason = 'again'",
        "DELETE FROM engine_run_holds",
        "TRUNCATE engine_run_holds",
    ):
        with pytest.raises(psycopg.Error, match=r"keeps its history|TRUNCATE refused"):
            raw.execute(statement)
    with pytest.raises(InputError, match="not an active hold: 1"):
        release_holds(engine, actor="cli:lead", reason="again", hold_ids=[hold_id])


def test_holding_what_is_held_is_a_no_op_and_release_by_scope_names_one_hold(
    engine: Engine,
) -> None:
    scope = HoldScope("US", Phase.UNIVERSES_DONE, DAY, DAY + timedelta(days=4))
    first, created = place_hold(engine, scope, actor="cli:a", reason="one")
    again, created_again = place_hold(engine, scope, actor="cli:b", reason="two")
    assert (created, created_again) == (True, False)
    assert again.hold_id == first.hold_id and again.reason == "one"
    wider = replace(scope, phase=None)
    with pytest.raises(InputError, match=r"no active hold on exactly US 2026-11-24\.\."):
        release_holds(engine, actor="cli:a", reason="done", scope=wider)
    (released,) = release_holds(engine, actor="cli:a", reason="done", scope=scope)
    assert released.hold_id == first.hold_id


# -- the CLI --------------------------------------------------------------------------------


def test_runs_hold_release_and_holds_from_the_cli(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = make_ready(engine, DAY)
    placed = invoke(
        capsys,
        db_url,
        *["runs", "hold", "--region", "US", "--phase", "data_ready", "--from", "2026-11-01"],
        *["--reason", "bad prices", "--format", "json"],
    )
    assert placed.code == 0, placed.err
    record = json.loads(placed.out)
    assert record["phase"] == "DATA_READY" and record["runs_held"] == 1 and record["created"]
    assert record["held_by"].startswith("cli:")

    listing = invoke(capsys, db_url, "runs", "list", "--format", "json")
    assert [r["hold_id"] for r in json.loads(listing.out)] == [record["hold_id"]]
    shown = invoke(capsys, db_url, "runs", "show", "--as-of", "2026-11-24", "--region", "US")
    assert f"run {run_id}  2026-11-24  US  DATA_READY  HELD" in shown.out
    assert "held by hold 1 on US DATA_READY from 2026-11-01" in shown.out
    holds = invoke(capsys, db_url, "runs", "holds")
    assert holds.out.splitlines()[1].split()[:4] == ["1", "US", "DATA_READY", "2026-11-01"]

    released = invoke(
        capsys,
        db_url,
        *["runs", "release", "--region", "US", "--phase", "DATA_READY", "--from", "2026-11-01"],
        *["--reason", "prices fixed"],
    )
    assert released.code == 0, released.err
    assert released.out == "released hold 1 on US DATA_READY from 2026-11-01\n"
    assert invoke(capsys, db_url, "runs", "holds", "--format", "json").out.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hold", "--region", "XX", "--reason", "r"], "unknown region 'XX'"),
        (["hold", "--region", "US", "--phase", "COMPLETED", "--reason", "r"], "not COMPLETED"),
        (
            [
                "hold",
                "--region",
                "US",
                "--from",
                "2026-02-01",
                "--to",
                "2026-01-01",
                "--reason",
                "r",
            ],
            "--from 2026-02-01 is after --to 2026-01-01",
        ),
        (["hold", "--region", "US", "--reason", "  "], "--reason must say why"),
        (["release", "7", "--reason", "r"], "not an active hold: 7"),
        (["release", "--reason", "r"], "name the holds to release"),
        (["release", "--phase", "DATA_READY", "--reason", "r"], "go with --region"),
        (["release", "--region", "US", "--reason", "r"], "US has no active hold"),
    ],
)
def test_bad_hold_input_is_one_line_exit_2_and_writes_nothing(
    engine: Engine,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    result = invoke(capsys, db_url, "runs", *args)
    assert result.code == 2, result
    assert len(result.err_lines) == 1 and message in result.err, result.err
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM engine_run_holds")).scalar_one() == 0


# -- check and metrics ----------------------------------------------------------------------


def test_check_reports_a_hold_held_too_long_and_not_its_runs_as_stuck(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], raw: psycopg.Connection[Any]
) -> None:
    run_id = make_ready(engine, DAY)
    raw.execute("UPDATE engine_runs SET phase_changed_at = now() - interval '3 days'")
    hold_id = hold(engine)
    calendar = TradingCalendar()
    report = find_problems(engine, CheckPolicy(), calendar=calendar)
    assert report.ok, report.problems  # held for a moment: neither stale nor stuck
    assert report.summary.endswith("1 hold(s) holding 1 run(s)")

    later = report.checked_at + timedelta(hours=25)
    report = find_problems(engine, CheckPolicy(), calendar=calendar, now=later)
    assert [p.kind for p in report.problems] == [ProblemKind.HOLD_STALE]
    assert f"hold {hold_id} on US by cli:ops for 1d1h (limit 1d) holds 1 run(s)" in (
        report.problems[0].message
    )
    assert find_problems(
        engine, CheckPolicy(max_hold_age=timedelta(days=2)), calendar=calendar, now=later
    ).ok

    release_holds(engine, actor="cli:ops", reason="over", hold_ids=[hold_id])
    stuck = find_problems(engine, CheckPolicy(), calendar=calendar)
    assert [(p.kind, getattr(p, "run_id", None)) for p in stuck.problems] == [
        (ProblemKind.STUCK, run_id)
    ]

    raw.execute(
        "INSERT INTO engine_run_holds (region, reason, held_by, held_at)"
        " VALUES ('EU', 'forgotten', 'cli:ops', now() - interval '2 hours')"
    )
    cli = invoke(capsys, db_url, "check", "--max-hold-age", "1h", "--stuck-after", "4d")
    assert cli.code == 1
    assert cli.out.startswith("HOLD_STALE: hold 2 on EU by cli:ops for 2h")
    assert invoke(capsys, db_url, "check", "--max-hold-age", "3h", "--stuck-after", "4d").code == 0


def test_a_stale_hold_is_exported_in_metrics(
    engine: Engine, quiet: Settings, reactors: ReactorThreads, raw: psycopg.Connection[Any]
) -> None:
    raw.execute(
        "INSERT INTO engine_run_holds (region, reason, held_by, held_at)"
        " VALUES ('EU', 'forgotten', 'cli:ops', now() - interval '2 days')"
    )
    running = reactors.start(replace(quiet, metrics_port=0))
    running.wait_ready()
    problems = dict(
        (labels["kind"], value) for labels, value in running.scraped()["prometheus_check_problems"]
    )
    assert problems["HOLD_STALE"] == 1
