"""``bench throughput``: N runs made DATA_READY in one transaction; time until all are
COMPLETED, with 1 and with 3 reactor processes running no-op phase tasks.

The reactors are real ``prometheus reactor`` processes, as in production, so they do
not share one interpreter lock; each is ready once its listener shows in
pg_stat_activity. Completion is polled every 20 ms with a count of the active runs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from prometheus.bench import Progress, noop_tasks, silent
from prometheus.config import Settings, subprocess_environment
from prometheus.db.connect import make_engine
from prometheus.db.databases import scratch_database
from prometheus.db.queries import query
from prometheus.errors import PrometheusError

POLL_S = 0.02
TRANSITIONS_PER_RUN = 3  # DATA_READY -> SIGNALS_DONE -> UNIVERSES_DONE -> COMPLETED


def measure_throughput(
    settings: Settings,
    *,
    runs: int = 3000,
    reactor_counts: Sequence[int] = (1, 3),
    concurrency: int = 4,
    timeout_s: float = 300.0,
    progress: Progress = silent,
) -> list[dict[str, Any]]:
    assert settings.database_url is not None
    return [
        _measure(settings, settings.database_url, runs, count, concurrency, timeout_s, progress)
        for count in reactor_counts
    ]


def _measure(
    settings: Settings,
    server_url: str,
    runs: int,
    reactors: int,
    concurrency: int,
    timeout_s: float,
    progress: Progress,
) -> dict[str, Any]:
    with scratch_database(server_url, prefix="prometheus_bench") as url:
        engine = make_engine(url, application_name="prometheus-bench", pool_size=1)
        try:
            with engine.begin() as conn:
                conn.execute(
                    query("bench_create_runs"),
                    {"start": "2000-01-01", "region": "BENCH", "runs": runs},
                )
            progress(f"{reactors} reactor(s): starting")
            with _reactors(url, reactors, concurrency, settings) as processes:
                _wait_listening(engine, reactors)
                started = time.perf_counter()
                with engine.begin() as conn:
                    conn.execute(query("bench_make_all_ready"))
                _wait_all_completed(
                    engine,
                    started + timeout_s,
                    lambda left: progress(f"{reactors} reactor(s): {runs - left}/{runs} runs done"),
                )
                elapsed = time.perf_counter() - started
                rss_mb = max(_rss_mb(p.pid) for p in processes)
            with engine.connect() as conn:
                transitions = conn.execute(query("bench_forward_transitions")).scalar_one()
        finally:
            engine.dispose()
    if transitions != runs * TRANSITIONS_PER_RUN:
        raise PrometheusError(
            f"expected {runs * TRANSITIONS_PER_RUN} transitions, "
            f"found {transitions}: work was lost or doubled"
        )
    return {
        "reactors": reactors,
        "concurrency": concurrency,
        "batch_max_runs": settings.batch_max_runs,
        "batch_max_ms": settings.batch_max_time.total_seconds() * 1000,
        "runs": runs,
        "seconds": round(elapsed, 3),
        "runs_per_s": round(runs / elapsed, 1),
        "transitions_per_s": round(transitions / elapsed, 1),
        "reactor_rss_mb": round(rss_mb, 1),
    }


@contextmanager
def _reactors(
    url: str, count: int, concurrency: int, settings: Settings
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = subprocess_environment(
        PROMETHEUS_DATABASE_URL=url,
        PROMETHEUS_PHASE_TASKS=noop_tasks.__name__,
        PROMETHEUS_BATCH_MAX_RUNS=str(settings.batch_max_runs),
        PROMETHEUS_BATCH_MAX_MS=str(settings.batch_max_time.total_seconds() * 1000),
    )
    command = [
        sys.executable,
        "-m",
        "prometheus",
        "--log-level",
        "WARNING",
        "reactor",
        "--concurrency",
        str(concurrency),
        "--sweep-interval",
        "3600",
    ]
    with ExitStack() as stack:
        logs: list[IO[bytes]] = []
        processes: list[subprocess.Popen[bytes]] = []
        for _ in range(count):
            log: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
            logs.append(log)
            processes.append(
                subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
            )
        try:
            yield processes
        finally:
            for process in processes:
                process.terminate()
            for process, log in zip(processes, logs, strict=True):
                if process.wait(60) != 0:
                    log.seek(0)
                    tail = log.read()[-2000:].decode(errors="replace")
                    raise PrometheusError(f"a bench reactor exited {process.returncode}: {tail}")


def _wait_listening(engine: Engine, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(query("bench_listeners")).scalar_one() >= count:
                return
        time.sleep(0.05)
    raise PrometheusError(f"{count} reactor(s) did not start listening within {timeout_s}s")


def _wait_all_completed(engine: Engine, deadline: float, left: Callable[[int], None]) -> None:
    with engine.connect() as conn:
        while (active := conn.execute(query("bench_count_active")).scalar_one()) > 0:
            conn.rollback()
            left(active)
            if time.perf_counter() > deadline:
                raise PrometheusError("runs did not all complete in time")
            time.sleep(POLL_S)


def _rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux); 0 where unavailable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
