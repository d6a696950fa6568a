"""Audited overrides: retry, cancel and set-phase record who and why; refusals change nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.errors import InputError
from prometheus.pipeline import overrides
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import (
    Event,
    Run,
    ensure_run,
    find_run,
    get_or_create_run,
    run_events,
    update_phase,
)
from tests.support.cli_runner import Result, invoke

DAY = date(2026, 11, 24)
TARGET = ["--as-of", "2026-11-24", "--region", "US"]


@pytest.fixture
def actor() -> str:
    return f"cli:{Settings.from_env({}).os_user}"


def failed_in(engine: Engine, phase: Phase) -> Run:
    """A run that failed in ``phase`` after two attempts, as the engine would leave it."""
    run = get_or_create_run(engine, DAY, "US")
    if phase is not Phase.WAITING_FOR_DATA:
        run = update_phase(engine, run, phase, actor="setup", force=True)
    return update_phase(engine, run, Phase.FAILED, actor="worker", detail={"error": "boom"})


def current(engine: Engine) -> tuple[Run, list[Event]]:
    run = find_run(engine, DAY, "US")
    assert run is not None
    return run, run_events(engine, run.run_id)


def assert_refused(result: Result, message: str) -> None:
    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert message in result.err_lines[0]
    assert "Traceback" not in result.err


@pytest.mark.parametrize("phase", [Phase.DATA_READY, Phase.UNIVERSES_DONE, Phase.WAITING_FOR_DATA])
def test_retry_returns_a_failed_run_to_the_phase_it_failed_in(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], actor: str, phase: Phase
) -> None:
    failed_in(engine, phase)
    result = invoke(capsys, db_url, "runs", "retry", *TARGET, "--reason", "vendor resent the file")
    assert result.code == 0, result.err
    run, events = current(engine)
    assert (run.phase, run.attempts, run.last_error) == (phase, 0, None)
    last = events[-1]
    assert (last.kind, last.from_phase, last.to_phase, last.actor) == (
        "transition",
        "FAILED",
        phase,
        actor,
    )
    assert last.detail == {"override": "retry", "reason": "vendor resent the file"}


def test_retry_resets_the_attempts_of_an_exhausted_run(engine: Engine, settings: Settings) -> None:
    run = ensure_run(engine, DAY, "US", data_ready=True, actor="t")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE engine_runs SET attempts = 3, last_error = 'boom' WHERE run_id = %s",
            (run.run_id,),
        )
    update_phase(engine, run, Phase.FAILED, actor="worker")
    assert current(engine)[0].attempts == 3
    retried = overrides.retry(engine, DAY, "US", actor="cli:ops", reason="fixed")
    assert (retried.phase, retried.attempts, retried.last_error) == (Phase.DATA_READY, 0, None)


@pytest.mark.parametrize("phase", [Phase.WAITING_FOR_DATA, Phase.SIGNALS_DONE, Phase.COMPLETED])
def test_retry_of_a_run_that_is_not_failed_exits_2_and_changes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], phase: Phase
) -> None:
    run = get_or_create_run(engine, DAY, "US")
    if phase is not Phase.WAITING_FOR_DATA:
        update_phase(engine, run, phase, actor="setup", force=True)
    before = current(engine)
    result = invoke(capsys, db_url, "runs", "retry", *TARGET, "--reason", "try again")
    assert_refused(result, f"is {phase}, not FAILED")
    assert current(engine) == before


@pytest.mark.parametrize("phase", [Phase.WAITING_FOR_DATA, Phase.DATA_READY, Phase.UNIVERSES_DONE])
def test_cancel_fails_an_active_run_with_an_audited_reason(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], actor: str, phase: Phase
) -> None:
    run = get_or_create_run(engine, DAY, "US")
    if phase is not Phase.WAITING_FOR_DATA:
        update_phase(engine, run, phase, actor="setup", force=True)
    result = invoke(capsys, db_url, "runs", "cancel", *TARGET, "--reason", "bad vendor data")
    assert result.code == 0, result.err
    run, events = current(engine)
    assert run.phase is Phase.FAILED
    last = events[-1]
    assert (last.from_phase, last.to_phase, last.actor) == (phase, "FAILED", actor)
    assert last.detail == {"override": "cancel", "reason": "bad vendor data"}


@pytest.mark.parametrize("phase", [Phase.COMPLETED, Phase.FAILED])
def test_cancel_of_a_terminal_run_exits_2_and_changes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], phase: Phase
) -> None:
    update_phase(engine, get_or_create_run(engine, DAY, "US"), phase, actor="setup", force=True)
    before = current(engine)
    result = invoke(capsys, db_url, "runs", "cancel", *TARGET, "--reason", "stop it")
    assert_refused(result, f"already {phase}")
    assert current(engine) == before


def test_set_phase_with_force_moves_anywhere_audited(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], actor: str
) -> None:
    update_phase(
        engine, get_or_create_run(engine, DAY, "US"), Phase.COMPLETED, actor="setup", force=True
    )
    result = invoke(
        capsys,
        db_url,
        "runs",
        "set-phase",
        *TARGET,
        "--phase",
        "signals_done",
        "--force",
        "--reason",
        "rebuild universes",
    )
    assert result.code == 0, result.err
    run, events = current(engine)
    assert run.phase is Phase.SIGNALS_DONE
    last = events[-1]
    assert (last.from_phase, last.to_phase, last.actor) == ("COMPLETED", "SIGNALS_DONE", actor)
    assert last.detail == {"override": "set-phase", "reason": "rebuild universes"}


def test_set_phase_without_force_exits_2_and_changes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    get_or_create_run(engine, DAY, "US")
    before = current(engine)
    result = invoke(
        capsys, db_url, "runs", "set-phase", *TARGET, "--phase", "COMPLETED", "--reason", "x"
    )
    assert_refused(result, "--force")
    assert current(engine) == before


@pytest.mark.parametrize("command", ["retry", "cancel", "set-phase"])
def test_overrides_need_a_real_reason(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    if command == "retry":
        failed_in(engine, Phase.DATA_READY)
    else:
        ensure_run(engine, DAY, "US", data_ready=True, actor="setup")
    before = current(engine)
    extra = ["--phase", "SIGNALS_DONE", "--force"] if command == "set-phase" else []
    missing = invoke(capsys, db_url, "runs", command, *TARGET, *extra)
    assert_refused(missing, "--reason")
    blank = invoke(capsys, db_url, "runs", command, *TARGET, *extra, "--reason", "   ")
    assert_refused(blank, "--reason must say why")
    assert current(engine) == before


@pytest.mark.parametrize("command", ["retry", "cancel", "set-phase"])
def test_overrides_of_a_missing_run_exit_2(
    db_url: str, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    extra = ["--phase", "DATA_READY", "--force"] if command == "set-phase" else []
    result = invoke(capsys, db_url, "runs", command, *TARGET, *extra, "--reason", "why")
    assert_refused(result, "no run for 2026-11-24 US")


def test_the_api_refuses_the_same_way(engine: Engine) -> None:
    get_or_create_run(engine, DAY, "US")
    with pytest.raises(InputError, match="not FAILED"):
        overrides.retry(engine, DAY, "US", actor="a", reason="r")
    with pytest.raises(InputError, match="--force"):
        overrides.set_phase(engine, DAY, "US", Phase.COMPLETED, actor="a", reason="r", force=False)
    assert len(current(engine)[1]) == 1
