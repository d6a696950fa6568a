"""`db upgrade` / `db status` on real databases: order, checksums, locking, refusal."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text

from prometheus.config import libpq_url
from prometheus.db.connect import make_engine
from prometheus.db.driver import driver_sql
from prometheus.db.migrate import (
    LockPolicy,
    MigrationState,
    discover,
    require_upgraded,
    status,
    upgrade,
)
from prometheus.db.queries import SQL_ROOT, query
from prometheus.errors import DatabaseAhead, MigrationError, NotUpgraded
from tests.support.cli_runner import invoke
from tests.support.lock_waits import lock_waiters
from tests.support.waiting import wait_until

ALL_FILES = [m.name for m in discover()]
MIGRATION_LOCK_SQL = "SELECT pg_advisory_lock(hashtextextended('prometheus.migrate', 0))"


@pytest.fixture
def empty_engine(empty_db_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_db_url, application_name="tests-migrate", pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def sql_root(tmp_path: Path) -> Path:
    """A private copy of sql/, so a test may edit or add migration files."""
    root = tmp_path / "sql"
    shutil.copytree(SQL_ROOT, root)
    return root


def _recorded(engine: Engine) -> list[str]:
    """Recorded files, in the order they were applied."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name FROM prometheus_migrations ORDER BY applied_at"))
        return list(rows.scalars())


def test_files_are_numbered_across_schema_and_triggers() -> None:
    """One sequence over both folders; gaps are fine (each engineer has a range)."""
    numbers = [m.number for m in discover()]
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1
    assert {name.split("/")[0] for name in ALL_FILES} == {"schema", "triggers"}


def test_upgrade_on_an_empty_database_applies_every_file_in_order(empty_engine: Engine) -> None:
    assert [s.state for s in status(empty_engine)] == [MigrationState.PENDING] * len(ALL_FILES)
    assert upgrade(empty_engine) == ALL_FILES
    assert sorted(_recorded(empty_engine)) == sorted(ALL_FILES)
    with empty_engine.connect() as conn:
        tables = set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
    assert {"engine_runs", "engine_run_events", "instruments", "prices_daily"} <= tables
    assert {"ingestion_batches", "signal_scores", "universe_members", "book_weights"} <= tables
    require_upgraded(empty_engine)


def test_a_second_upgrade_applies_nothing(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    assert upgrade(empty_engine) == []
    assert sorted(_recorded(empty_engine)) == sorted(ALL_FILES)


def test_status_lists_each_file_applied_with_its_time(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    rows = status(empty_engine)
    assert [r.name for r in rows] == ALL_FILES
    assert all(r.state is MigrationState.APPLIED for r in rows)
    assert all(r.applied_at is not None for r in rows)


def test_a_new_file_is_pending_then_applied_alone(empty_engine: Engine, sql_root: Path) -> None:
    upgrade(empty_engine, root=sql_root)
    (sql_root / "schema" / "0099_extra.sql").write_text("CREATE TABLE extra (x int);\n")
    states = {s.name: s.state for s in status(empty_engine, root=sql_root)}
    assert states.pop("schema/0099_extra.sql") is MigrationState.PENDING
    assert set(states.values()) == {MigrationState.APPLIED}
    with pytest.raises(NotUpgraded):
        require_upgraded(empty_engine, root=sql_root)
    assert upgrade(empty_engine, root=sql_root) == ["schema/0099_extra.sql"]
    require_upgraded(empty_engine, root=sql_root)


def test_an_edited_applied_file_is_an_error(empty_engine: Engine, sql_root: Path) -> None:
    upgrade(empty_engine, root=sql_root)
    edited = sql_root / "schema" / "0001_engine_runs.sql"
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    (sql_root / "schema" / "0099_extra.sql").write_text("CREATE TABLE extra (x int);\n")
    states = {s.name: s.state for s in status(empty_engine, root=sql_root)}
    assert states["schema/0001_engine_runs.sql"] is MigrationState.CHANGED
    with pytest.raises(MigrationError, match=r"0001_engine_runs\.sql was edited"):
        upgrade(empty_engine, root=sql_root)
    with pytest.raises(NotUpgraded, match="run `prometheus db upgrade`"):
        require_upgraded(empty_engine, root=sql_root)
    assert "schema/0099_extra.sql" not in _recorded(empty_engine)  # nothing applied past it


def test_a_failing_file_rolls_back_alone(empty_engine: Engine, sql_root: Path) -> None:
    broken = sql_root / "schema" / "0099_broken.sql"
    broken.write_text("CREATE TABLE half_done (x int);\nSELECT 1 / 0;\n")
    with pytest.raises(psycopg.errors.DivisionByZero):
        upgrade(empty_engine, root=sql_root)
    assert sorted(_recorded(empty_engine)) == sorted(ALL_FILES)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('half_done')")).scalar() is None
    # The lock was released: once fixed, the file applies.
    broken.write_text("CREATE TABLE half_done (x int);\n")
    assert upgrade(empty_engine, root=sql_root) == ["schema/0099_broken.sql"]


@pytest.mark.parametrize(
    ("name", "message"), [("0004_dup.sql", "already used"), ("bad-name.sql", "NNNN_name.sql")]
)
def test_badly_numbered_files_are_refused(sql_root: Path, name: str, message: str) -> None:
    (sql_root / "schema" / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=message):
        discover(sql_root)


def test_two_concurrent_upgrades_both_succeed_and_apply_each_file_once(
    empty_db_url: str,
) -> None:
    engines = [make_engine(empty_db_url, application_name=f"upgrader-{n}") for n in range(2)]
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def upgrader(n: int) -> None:
        try:
            results[n] = upgrade(engines[n])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    # Hold the migration lock so both upgraders queue on it, then let them race.
    with psycopg.connect(libpq_url(empty_db_url), autocommit=True) as holder:
        holder.execute(MIGRATION_LOCK_SQL)
        threads = [threading.Thread(target=upgrader, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        wait_until(
            lambda: lock_waiters(holder, "advisory") == 2,
            timeout=10,
            what="both upgraders waiting on the migration lock",
        )
    for t in threads:
        t.join(timeout=30)
    try:
        assert errors == []
        assert sorted(results) == [0, 1]
        assert sorted(results[0] + results[1]) == sorted(ALL_FILES)  # each applied once
        recorded = _recorded(engines[0])  # they may share the work, but never its order
        assert recorded == ALL_FILES
    finally:
        for engine in engines:
            engine.dispose()


def test_commands_refuse_a_database_that_is_not_upgraded(
    empty_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["runs", "list"], ["runs", "advance-all"]):
        result = invoke(capsys, empty_db_url, *command)
        assert result.code == 1
        assert result.out == ""
        assert len(result.err_lines) == 1, result.err
        assert "run `prometheus db upgrade`" in result.err_lines[0]
        assert "Traceback" not in result.err


def test_db_status_and_upgrade_commands(
    empty_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, empty_db_url, "db", "status", "--format", "csv")
    assert result.code == 1
    assert result.out.count(",pending,") == len(ALL_FILES)

    result = invoke(capsys, empty_db_url, "db", "upgrade")
    assert result.code == 0
    assert result.out.endswith(f"is up to date ({len(ALL_FILES)} file(s) applied)\n")

    result = invoke(capsys, empty_db_url, "db", "status", "--format", "csv")
    assert result.code == 0
    assert result.out.count(",applied,") == len(ALL_FILES)
    assert invoke(capsys, empty_db_url, "runs", "list", "--format", "csv").code == 0


# --- validated before anything is applied ---------------------------------------------------


def _record_unknown(engine: Engine, *names: str) -> None:
    """What a newer prometheus leaves behind: files applied that this code does not have."""
    with engine.begin() as conn:
        for name in names:
            conn.execute(
                text("INSERT INTO prometheus_migrations (name, checksum) VALUES (:n, 'x')"),
                {"n": name},
            )


def test_a_database_ahead_of_the_code_is_refused_naming_the_files(
    empty_engine: Engine, sql_root: Path
) -> None:
    upgrade(empty_engine)
    _record_unknown(empty_engine, "schema/0998_newer.sql", "triggers/0999_newest.sql")
    (sql_root / "schema" / "0997_extra.sql").write_text("CREATE TABLE extra (x int);\n")
    ahead = r"schema/0998_newer\.sql, triggers/0999_newest\.sql"
    with pytest.raises(DatabaseAhead, match=ahead):
        upgrade(empty_engine, root=sql_root)
    with pytest.raises(DatabaseAhead, match=ahead):
        require_upgraded(empty_engine)
    states = {s.name: s.state for s in status(empty_engine)}
    assert states["triggers/0999_newest.sql"] is MigrationState.UNKNOWN
    assert "schema/0997_extra.sql" not in _recorded(empty_engine)  # nothing applied


@pytest.mark.parametrize(
    "command",
    [["runs", "list"], ["check"], ["ingest", "status"], ["db", "upgrade"], ["db", "status"]],
)
def test_every_command_refuses_a_database_ahead_of_the_code(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    _record_unknown(engine, "schema/0999_newer.sql")
    result = invoke(capsys, db_url, *command)
    assert result.code == 1, result
    if command == ["db", "status"]:  # it lists the file, and fails
        assert "schema/0999_newer.sql" in result.out
        return
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert "schema/0999_newer.sql" in result.err_lines[0]
    assert "Traceback" not in result.err


def test_a_pending_file_numbered_before_an_applied_one_is_refused(
    empty_engine: Engine, sql_root: Path
) -> None:
    """Applied after a later file, it would run against a schema it was not written for."""
    upgrade(empty_engine, root=sql_root)
    (sql_root / "schema" / "0098_later.sql").write_text("CREATE TABLE later (x int);\n")
    upgrade(empty_engine, root=sql_root)
    (sql_root / "schema" / "0097_earlier.sql").write_text("CREATE TABLE earlier (x int);\n")
    (sql_root / "schema" / "0099_last.sql").write_text("CREATE TABLE last (x int);\n")
    with pytest.raises(MigrationError, match=r"0097_earlier\.sql .*0098_later\.sql"):
        upgrade(empty_engine, root=sql_root)
    recorded = _recorded(empty_engine)
    assert "schema/0097_earlier.sql" not in recorded
    assert "schema/0099_last.sql" not in recorded


# --- DDL never queues every claim behind it -------------------------------------------------

ALTER_RUNS = "ALTER TABLE engine_runs ADD COLUMN note text;\n"
SHORT = LockPolicy(timeout_s=0.5, attempts=3, first_pause_s=0.2)


def test_ddl_waits_for_a_running_phase_without_blocking_claims_then_gives_up(
    empty_engine: Engine, empty_db_url: str, sql_root: Path
) -> None:
    """A phase holds its run (a claim's row lock) while an upgrade wants engine_runs
    whole. The upgrade waits a bounded time per try, so a claim of another run arriving
    meanwhile waits at most that long, never for the phase; after its tries the upgrade
    fails, cleanly: nothing of the file applied, the lock released."""
    upgrade(empty_engine, root=sql_root)
    (sql_root / "schema" / "0099_note.sql").write_text(ALTER_RUNS)
    with empty_engine.begin() as conn:
        for region in ("US", "EU"):
            conn.execute(
                query("insert_run"), {"as_of_date": "2026-11-24", "region": region, "actor": "t"}
            )
        busy, other = conn.execute(text("SELECT run_id FROM engine_runs ORDER BY run_id")).scalars()
    failures: list[BaseException] = []

    def upgrader() -> None:
        try:
            upgrade(empty_engine, root=sql_root, locks=SHORT)
        except BaseException as exc:
            failures.append(exc)

    url = libpq_url(empty_db_url)
    with psycopg.connect(url) as phase, psycopg.connect(url, autocommit=True) as watcher:
        phase.execute(driver_sql(query("claim_runs")), {"run_ids": [busy]})  # held: a long phase
        thread = threading.Thread(target=upgrader)
        thread.start()
        wait_until(lambda: lock_waiters(watcher, "relation") == 1, what="the ALTER waiting")
        with psycopg.connect(url) as claimer:
            claimer.execute("SET lock_timeout = '5s'")  # a regression fails, not hangs
            claimed = claimer.execute(driver_sql(query("claim_runs")), {"run_ids": [other]})
            assert claimed.fetchone() is not None
            claimer.rollback()
        thread.join(timeout=30)
        phase.rollback()
    assert not thread.is_alive()
    assert len(failures) == 1 and isinstance(failures[0], MigrationError), failures
    assert "0099_note.sql" in str(failures[0]) and "3 tries" in str(failures[0])
    assert "schema/0099_note.sql" not in _recorded(empty_engine)
    with empty_engine.connect() as conn:
        columns = conn.execute(
            text("SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'")
        ).scalar_one()
    assert columns == 0
    assert upgrade(empty_engine, root=sql_root) == ["schema/0099_note.sql"]  # lock released


def test_ddl_applies_once_the_phase_ends(
    empty_engine: Engine, empty_db_url: str, sql_root: Path
) -> None:
    upgrade(empty_engine, root=sql_root)
    (sql_root / "schema" / "0099_note.sql").write_text(ALTER_RUNS)
    patient = LockPolicy(timeout_s=0.3, attempts=50, first_pause_s=0.1)
    applied: list[list[str]] = []
    url = libpq_url(empty_db_url)
    with psycopg.connect(url) as phase, psycopg.connect(url, autocommit=True) as watcher:
        phase.execute("LOCK TABLE engine_runs IN ROW EXCLUSIVE MODE")  # as a phase's writes
        thread = threading.Thread(
            target=lambda: applied.append(upgrade(empty_engine, root=sql_root, locks=patient))
        )
        thread.start()
        wait_until(lambda: lock_waiters(watcher, "relation") == 1, what="the ALTER waiting")
        phase.rollback()
        thread.join(timeout=60)
    assert applied == [["schema/0099_note.sql"]]
