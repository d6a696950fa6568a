"""Audited overrides: retry, cancel and set-phase record who and why; refusals change nothing.

Each case is a run of its own region (named after the phase it starts in), so one
database serves a whole table of cases; the CLI knows those regions because the
configured region map names them.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, text

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
from tests.support.placing import place

DAY = date(2026, 11, 24)


@pytest.fixture(autouse=True)
def case_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A region per phase (and BUSY) next to US: the CLI refuses regions it cannot map."""
    regions = ["US", "BUSY", *Phase]
    monkeypatch.setenv("PROMETHEUS_REGION_EXCHANGES", ",".join(f"{r}=XNYS" for r in regions))


@pytest.fixture
def actor() -> str:
    return f"cli:{Settings.from_env({}).os_user}"


def target(region: str) -> list[str]:
    return ["--as-of", DAY.isoformat(), "--region", region]


def run_in(engine: Engine, phase: Phase, region: str | None = None) -> Run:
    run = get_or_create_run(engine, DAY, region or phase, actor="setup")
    if phase is not Phase.WAITING_FOR_DATA:
        run = place(engine, run, phase)
    return run


def failed_in(engine: Engine, phase: Phase) -> Run:
    """A run that failed in ``phase``, as the engine leaves it (region: the phase's name)."""
    run = run_in(engine, phase)
    return update_phase(engine, run, Phase.FAILED, actor="worker", detail={"error": "boom"})


def current(engine: Engine, region: str) -> tuple[Run, list[Event]]:
    run = find_run(engine, DAY, region)
    assert run is not None
    return run, run_events(engine, run.run_id)


def assert_refused(result: Result, message: str) -> None:
    assert result.code == 2, result
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert message in result.err_lines[0]
    assert "Traceback" not in result.err


def test_retry_returns_a_failed_run_to_the_phase_it_failed_in(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], actor: str
) -> None:
    for phase in (Phase.WAITING_FOR_DATA, Phase.DATA_READY, Phase.UNIVERSES_DONE):
        failed_in(engine, phase)
        reason = ["--reason", "vendor resent the file"]
        result = invoke(capsys, db_url, "runs", "retry", *target(phase), *reason)
        assert result.code == 0, result.err
        run, events = current(engine, phase)
        assert (run.phase, run.attempts, run.last_error) == (phase, 0, None)
        last = events[-1]
        assert (last.kind, last.from_phase, last.to_phase, last.actor) == (
            "transition",
            "FAILED",
            phase,
            actor,
        )
        assert last.detail == {"override": "retry", "reason": "vendor resent the file"}


def test_retry_resets_the_attempts_of_an_exhausted_run(engine: Engine) -> None:
    run = ensure_run(engine, DAY, "US", data_ready=True, actor="t")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE engine_runs SET attempts = 3, last_error = 'boom' WHERE run_id = %s",
            (run.run_id,),
        )
    update_phase(engine, run, Phase.FAILED, actor="worker")
    assert current(engine, "US")[0].attempts == 3
    retried = overrides.retry(engine, DAY, "US", actor="cli:ops", reason="fixed")
    assert (retried.phase, retried.attempts, retried.last_error) == (Phase.DATA_READY, 0, None)


def test_retry_of_a_run_that_is_not_failed_exits_2_and_changes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for phase in (Phase.WAITING_FOR_DATA, Phase.SIGNALS_DONE, Phase.COMPLETED):
        run_in(engine, phase)
        before = current(engine, phase)
        result = invoke(capsys, db_url, "runs", "retry", *target(phase), "--reason", "again")
        assert_refused(result, f"is {phase}, not FAILED")
        assert current(engine, phase) == before


def test_cancel_fails_an_active_run_with_an_audited_reason(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], actor: str
) -> None:
    for phase in (Phase.WAITING_FOR_DATA, Phase.DATA_READY, Phase.UNIVERSES_DONE):
        run_in(engine, phase)
        result = invoke(capsys, db_url, "runs", "cancel", *target(phase), "--reason", "bad data")
        assert result.code == 0, result.err
        run, events = current(engine, phase)
        assert run.phase is Phase.FAILED
        last = events[-1]
        assert (last.from_phase, last.to_phase, last.actor) == (phase, "FAILED", actor)
        assert last.detail == {"override": "cancel", "reason": "bad data"}


def test_cancel_of_a_terminal_run_exits_2_and_changes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for phase in (Phase.COMPLETED, Phase.FAILED):
        run_in(engine, phase)
        before = current(engine, phase)
        result = invoke(capsys, db_url, "runs", "cancel", *target(phase), "--reason", "stop it")
        assert_refused(result, f"already {phase}")
        assert current(engine, phase) == before


def test_set_phase_with_force_moves_anywhere_audited(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], actor: str
) -> None:
    run_in(engine, Phase.COMPLETED, region="US")
    result = invoke(
        capsys,
        db_url,
        "runs",
        "set-phase",
        *target("US"),
        "--phase",
        "signals_done",
        "--force",
        "--reason",
        "rebuild universes",
    )
    assert result.code == 0, result.err
    run, events = current(engine, "US")
    assert run.phase is Phase.SIGNALS_DONE
    last = events[-1]
    assert (last.from_phase, last.to_phase, last.actor) == ("COMPLETED", "SIGNALS_DONE", actor)
    assert last.detail == {"override": "set-phase", "reason": "rebuild universes"}


def test_set_phase_without_force_exits_2_and_changes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_in(engine, Phase.WAITING_FOR_DATA, region="US")
    before = current(engine, "US")
    for phase in ("COMPLETED", "DATA_READY"):  # even a move the state machine allows
        args = ["--phase", phase, "--reason", "x"]
        assert_refused(invoke(capsys, db_url, "runs", "set-phase", *target("US"), *args), "--force")
    assert current(engine, "US") == before


def test_set_phase_to_the_phase_it_is_in_exits_2_and_changes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a transition, so nothing would be audited: refused rather than a silent success."""
    run_in(engine, Phase.DATA_READY, region="US")
    before = current(engine, "US")
    args = [*target("US"), "--phase", "DATA_READY", "--force", "--reason", "reset"]
    assert_refused(invoke(capsys, db_url, "runs", "set-phase", *args), "already DATA_READY")
    assert current(engine, "US") == before


def test_overrides_need_a_real_reason(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    failed_in(engine, Phase.DATA_READY)  # region DATA_READY: a FAILED run, for retry
    run_in(engine, Phase.SIGNALS_DONE, region="US")  # an active run, for cancel and set-phase
    cases = [
        ("retry", "DATA_READY", []),
        ("cancel", "US", []),
        ("set-phase", "US", ["--phase", "COMPLETED", "--force"]),
    ]
    for command, region, extra in cases:
        before = current(engine, region)
        missing = invoke(capsys, db_url, "runs", command, *target(region), *extra)
        assert_refused(missing, "--reason")
        args = [*target(region), *extra, "--reason", "   "]
        assert_refused(invoke(capsys, db_url, "runs", command, *args), "--reason must say why")
        assert current(engine, region) == before


def test_overrides_of_a_missing_run_exit_2(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command, extra in (("retry", []), ("cancel", []), ("set-phase", ["--phase", "FAILED"])):
        args = [*target("US"), *extra, *(["--force"] if extra else []), "--reason", "why"]
        result = invoke(capsys, db_url, "runs", command, *args)
        assert_refused(result, "no run for 2026-11-24 US")


def test_the_api_refuses_the_same_way(engine: Engine) -> None:
    get_or_create_run(engine, DAY, "US")
    with pytest.raises(InputError, match="not FAILED"):
        overrides.retry(engine, DAY, "US", actor="a", reason="r")
    with pytest.raises(InputError, match="--force"):
        overrides.set_phase(engine, DAY, "US", Phase.COMPLETED, actor="a", reason="r", force=False)
    assert len(current(engine, "US")[1]) == 1


@pytest.mark.parametrize("command", ["cancel", "retry", "set-phase"])
def test_an_override_of_a_run_whose_phase_is_running_says_busy_and_changes_nothing(
    engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    region = "BUSY"
    run = run_in(engine, Phase.SIGNALS_DONE, region)
    before = current(engine, region)
    extra = ["--phase", "DATA_READY", "--force"] if command == "set-phase" else []
    with engine.connect() as holder, holder.begin():  # a phase in progress holds the row
        holder.execute(
            text("SELECT 1 FROM engine_runs WHERE run_id = :id FOR NO KEY UPDATE"),
            {"id": run.run_id},
        )
        result = invoke(capsys, db_url, "runs", command, *target(region), *extra, "--reason", "ops")
    assert result.code == 1, result
    assert len(result.err_lines) == 1, result.err
    assert "being advanced right now" in result.err_lines[0]
    assert current(engine, region) == before
