"""Real ``prometheus reactor`` subprocesses for ``tests/process``.

Each process gets an environment built from scratch (this one's minus every
``PROMETHEUS_*`` variable, plus the test database and the test phase tasks), logs to a
file of its own (never a pipe that could fill and block it), and counts as ready when
its listener's backend is in ``pg_stat_activity``: a signal, not a sleep. The fixture
SIGKILLs whatever is still running at teardown and waits for it, before the database is
dropped; ``tests/process/conftest.py`` shows every process's output when a test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from signal import Signals
from typing import IO, Any

import pytest
from sqlalchemy import Engine, text

from prometheus.db.connect import make_engine
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import get_run
from tests.support import process_tasks
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
REAP_TIMEOUT_S = 10.0


def process_env(db_url: str, home: Path, **settings: str) -> dict[str, str]:
    """This environment minus ``PROMETHEUS_*``, plus exactly the given settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")}
    # The phase-task module lives in tests/, which the console script would not find.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(PROMETHEUS_DATABASE_URL=db_url, PROMETHEUS_HOME=str(home), **settings)
    return env


@dataclass(repr=False)
class ReactorProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    reactor_id: str | None = None
    metrics_port: int | None = None

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"exit {self.proc.returncode}"
        return f"<{self.name} {self.reactor_id} pid {self.proc.pid}, {state}>"

    @property
    def id(self) -> str:
        assert self.reactor_id is not None, f"{self.name} has not logged reactor.started"
        return self.reactor_id

    @property
    def work_application_name(self) -> str:
        return f"prometheus-reactor:{self.id}"[:63]

    @property
    def listener_application_name(self) -> str:
        return f"prometheus-listener:{self.id}"[:63]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The structlog JSON lines it has written so far (anything else is skipped)."""
        found = []
        for line in self.output().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events() if e.get("event") == name), None)

    def send(self, sig: Signals) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(REAP_TIMEOUT_S)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running {timeout}s after it was asked to stop;"
                f" output:\n{self.output()}"
            ) from None


class ReactorProcesses:
    """Starts reactors against one test database and reaps them all in ``close``."""

    def __init__(
        self,
        db_url: str,
        workdir: Path,
        *,
        phase_tasks: str = process_tasks.MODULE,
        **settings: str,
    ) -> None:
        """``settings``: more PROMETHEUS_* variables for every reactor started."""
        self._workdir = workdir
        self._env = process_env(
            db_url, workdir / "home", PROMETHEUS_PHASE_TASKS=phase_tasks, **settings
        )
        self._engine = make_engine(db_url, application_name="tests-reactor-processes", pool_size=1)
        self._files: list[IO[bytes]] = []
        self.started: list[ReactorProcess] = []

    def spawn(self, *args: str, module: bool = False) -> ReactorProcess:
        """Start one, without waiting; ``module`` runs the engine_daemon module instead of
        the ``prometheus reactor`` command."""
        entry = ["prometheus.orchestration.engine_daemon"] if module else ["prometheus", "reactor"]
        name = f"reactor-{len(self.started) + 1}"
        log_path = self._workdir / f"{name}.log"
        log_file = log_path.open("wb")
        self._files.append(log_file)
        proc = subprocess.Popen(
            [sys.executable, "-m", *entry, *args],
            env=self._env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        reactor = ReactorProcess(name, proc, log_path)
        self.started.append(reactor)
        return reactor

    def start(self, *args: str, module: bool = False) -> ReactorProcess:
        return self.wait_ready(self.spawn(*args, module=module))

    def start_many(self, count: int, *args: str) -> list[ReactorProcess]:
        """Start ``count`` alike, in parallel, and wait until every one is ready."""
        spawned = [self.spawn(*args) for _ in range(count)]
        return [self.wait_ready(reactor) for reactor in spawned]

    def wait_ready(
        self, reactor: ReactorProcess, timeout: float = READY_TIMEOUT_S
    ) -> ReactorProcess:
        """Wait for its ``reactor.started`` line (for its id), then for its listener."""

        def ready() -> bool:
            if not reactor.alive():
                raise AssertionError(
                    f"{reactor.name} exited with {reactor.proc.returncode} before it was ready;"
                    f" output:\n{reactor.output()}"
                )
            if reactor.reactor_id is None:
                started = reactor.event("reactor.started")
                if started is None:
                    return False
                reactor.reactor_id = str(started["reactor_id"])
                reactor.metrics_port = started.get("metrics_port")
            return reactor.listener_application_name in self.application_names()

        try:
            wait_until(ready, timeout=timeout, interval=0.05, what=f"{reactor.name} listening")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; output:\n{reactor.output()}") from None
        return reactor

    def by_application_name(self, application_name: str) -> ReactorProcess:
        for reactor in self.started:
            if reactor.reactor_id is not None and application_name in (
                reactor.work_application_name,
                reactor.listener_application_name,
            ):
                return reactor
        raise AssertionError(f"no reactor of ours is {application_name!r}")

    def application_names(self) -> set[str]:
        """application_name of every backend connected to the test database."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE datname = current_database()"
                )
            )
            return set(rows.scalars())

    def stopped_at(self, reactor: ReactorProcess) -> datetime | None:
        """``reactor_heartbeats.stopped_at`` of the reactor (None while it runs)."""
        with self._engine.connect() as conn:
            stopped: datetime | None = conn.execute(
                text("SELECT stopped_at FROM reactor_heartbeats WHERE reactor_id = :id"),
                {"id": reactor.id},
            ).scalar_one()
            return stopped

    def outputs(self) -> list[tuple[str, str]]:
        return [(f"{r.name} ({r.reactor_id}) output", r.output()) for r in self.started]

    def close(self) -> None:
        for reactor in self.started:
            if reactor.alive():
                reactor.proc.kill()
            reactor.proc.wait(REAP_TIMEOUT_S)
        for log_file in self._files:
            log_file.close()
        self._engine.dispose()


def wait_for_phase(engine: Engine, run_id: int, phase: Phase, *, timeout: float = 30.0) -> None:
    def reached() -> Phase | None:
        run = get_run(engine, run_id)
        return run.phase if run is not None and run.phase is phase else None

    try:
        wait_until(reached, timeout=timeout, what=f"run {run_id} {phase}")
    except AssertionError:
        run = get_run(engine, run_id)
        raise AssertionError(f"run {run_id} not {phase} after {timeout}s: {run}") from None


@pytest.fixture
def reactors(db_url: str, tmp_path: Path) -> Iterator[ReactorProcesses]:
    procs = ReactorProcesses(db_url, tmp_path)
    try:
        yield procs
    finally:
        procs.close()
