"""``bench startup``: how long a fresh ``prometheus`` process takes, start to exit.

An operator's command, a cron job and a DAG task each pay the interpreter's start and
the imports of the command they run. Each case starts the command as a new process
(the console script next to this interpreter) ``repeat`` times after one warm-up, with
an environment free of ``PROMETHEUS_*``, and times it from outside: ``--help``,
``--version``, and ``runs list`` against a scratch database with a screenful of runs on
the configured server (the database is reached, the schema checked, the rows printed).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from prometheus.bench import Progress, silent
from prometheus.config import Settings, subprocess_environment
from prometheus.db.connect import make_engine
from prometheus.db.databases import scratch_database
from prometheus.db.queries import query
from prometheus.errors import PrometheusError
from prometheus.percentiles import percentile

LISTED_RUNS = 20


def measure_startup(
    settings: Settings, *, repeat: int = 10, progress: Progress = silent
) -> dict[str, Any]:
    """Median, fastest and slowest wall time of each case, in milliseconds."""
    assert settings.database_url is not None
    result: dict[str, Any] = {"repeat": repeat}
    with scratch_database(settings.database_url, prefix="prometheus_bench") as url:
        _seed(url)
        cases = {
            "help": ("--help", ["--help"]),
            "version": ("--version", ["--version"]),
            "runs_list": ("runs list", ["--database-url", url, "runs", "list"]),
        }
        for name, (label, argv) in cases.items():
            progress(f"prometheus {label} ({repeat + 1} starts)")
            samples = [_wall(label, argv) for _ in range(repeat + 1)][1:]  # the first warms caches
            result |= {
                f"{name}_p50_ms": round(percentile(samples, 50) * 1000, 1),
                f"{name}_min_ms": round(min(samples) * 1000, 1),
                f"{name}_max_ms": round(max(samples) * 1000, 1),
            }
    return result


def command() -> list[str]:
    """The ``prometheus`` console script of this installation (``python -m prometheus``
    where there is none, as in a source checkout run without installing)."""
    script = Path(sys.executable).with_name("prometheus")
    return [str(script)] if script.exists() else [sys.executable, "-m", "prometheus"]


def _seed(url: str) -> None:
    engine = make_engine(url, application_name="prometheus-bench", pool_size=1)
    try:
        with engine.begin() as conn:
            params = {"start": date(2026, 1, 5), "region": "US", "runs": LISTED_RUNS}
            conn.execute(query("bench_create_runs"), params)
    finally:
        engine.dispose()


def _wall(label: str, argv: Sequence[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*command(), *argv],
        env=subprocess_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()
        raise PrometheusError(
            f"`prometheus {label}` exited {done.returncode}: {error[-1] if error else 'no message'}"
        )
    return elapsed
