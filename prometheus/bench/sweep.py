"""``bench sweep``: the backstop's cost with many active runs of which none is due.

10,000 runs in backoff (active, not due) is the worst steady state for the sweep; the
partial index ``engine_runs_due_idx`` should make it cost what is due, not what exists.
Measures the sweep's queries and an idle worker's claim, each repeated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Engine

from prometheus.bench import Progress, silent
from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import scratch_database
from prometheus.db.queries import query
from prometheus.errors import PrometheusError
from prometheus.percentiles import summary_ms
from prometheus.pipeline.state import advance_next, count_due_runs, seconds_until_next_retry

REPEATS = 200


def measure_sweep(
    settings: Settings, *, runs: int = 10_000, progress: Progress = silent
) -> dict[str, Any]:
    assert settings.database_url is not None
    with scratch_database(settings.database_url, prefix="prometheus_bench") as url:
        engine = make_engine(url, application_name="prometheus-bench", pool_size=1)
        try:
            progress(f"parking {runs} runs in backoff")
            _park(engine, runs)
            progress(f"timing the sweep ({REPEATS} times) and an idle claim")
            sweep = _timed(
                lambda: count_due_runs(engine) == 0 and seconds_until_next_retry(engine) is not None
            )
            claim = _timed(lambda: advance_next(engine, settings=settings, actor="bench") is None)
        finally:
            engine.dispose()
    return {"active_runs": runs, **summary_ms(sweep, "sweep_"), **summary_ms(claim, "idle_claim_")}


def _park(engine: Engine, runs: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            query("bench_create_runs"), {"start": date(2000, 1, 1), "region": "BENCH", "runs": runs}
        )
        conn.execute(query("bench_make_all_ready"))
    with engine.begin() as conn:
        conn.execute(query("bench_park_runs"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(query("bench_vacuum_runs"))


def _timed(action: Callable[[], bool]) -> list[float]:
    """Seconds per call; each call must find what a no-work sweep finds (nothing due)."""
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        as_expected = action()
        samples.append(time.perf_counter() - started)
        if not as_expected:
            raise PrometheusError("the sweep found work where none was due")
    return samples
