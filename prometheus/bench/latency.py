"""``bench latency``: from just before the statement that makes a run DATA_READY is sent,
to the start of its first phase task, and to its COMPLETED commit.

One run at a time, so each sample is the unloaded path: trigger -> NOTIFY -> listener ->
dispatcher -> row claim -> task. The reactor runs in this process (so the task's start
is read on the same clock); the completion is a notification sent by the last task,
which PostgreSQL delivers only once the COMPLETED transition has committed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql

from prometheus.bench import Progress, probe_tasks, silent
from prometheus.config import Settings, libpq_url
from prometheus.db.connect import make_engine
from prometheus.db.databases import scratch_database
from prometheus.db.queries import query
from prometheus.orchestration.engine_daemon import Reactor
from prometheus.percentiles import summary_ms

WARMUP_RUNS = 20
SAMPLE_TIMEOUT_S = 10.0


def measure_latency(
    settings: Settings, *, runs: int = 500, progress: Progress = silent
) -> dict[str, Any]:
    assert settings.database_url is not None
    with scratch_database(settings.database_url, prefix="prometheus_bench") as url:
        bench_settings = replace(
            settings,
            database_url=url,
            phase_tasks=probe_tasks.__name__,
            sweep_interval=timedelta(hours=1),
        )
        return _measure(bench_settings, url, runs, progress)


def _measure(settings: Settings, url: str, runs: int, progress: Progress) -> dict[str, Any]:
    engine = make_engine(url, application_name="prometheus-bench", pool_size=1)
    reactor = Reactor(settings, metrics_host="127.0.0.1")
    thread = threading.Thread(target=reactor.run, name="bench-reactor", daemon=True)
    try:
        with engine.begin() as conn:
            run_ids = list(
                conn.execute(
                    query("bench_create_runs"),
                    {"start": date(2000, 1, 1), "region": "BENCH", "runs": runs + WARMUP_RUNS},
                ).scalars()
            )
        progress("starting the reactor")
        thread.start()
        if not reactor.listener.connected.wait(30):
            raise TimeoutError("the reactor's listener did not connect")
        with (
            psycopg.connect(libpq_url(url), autocommit=True) as listen,
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        ):
            listen.execute(
                sql.SQL("LISTEN {}").format(sql.Identifier(probe_tasks.COMPLETED_CHANNEL))
            )
            to_start: list[float] = []
            to_complete: list[float] = []
            for index, run_id in enumerate(run_ids):
                sent = time.perf_counter()
                conn.execute(query("bench_make_ready"), {"run_id": run_id})
                started = probe_tasks.wait_for_start(run_id, SAMPLE_TIMEOUT_S)
                _wait_completed(listen, run_id)
                completed = time.perf_counter()
                if index >= WARMUP_RUNS:
                    to_start.append(started - sent)
                    to_complete.append(completed - sent)
                progress(f"run {index + 1}/{len(run_ids)} ({WARMUP_RUNS} to warm up)")
    finally:
        reactor.request_stop()
        thread.join(30)
        engine.dispose()
    return {
        "n": len(to_start),
        **summary_ms(to_start),
        "complete_p50_ms": summary_ms(to_complete)["p50_ms"],
        "complete_p90_ms": summary_ms(to_complete)["p90_ms"],
        "complete_p99_ms": summary_ms(to_complete)["p99_ms"],
        "complete_max_ms": summary_ms(to_complete)["max_ms"],
    }


def _wait_completed(listen: psycopg.Connection[Any], run_id: int) -> None:
    for notify in listen.notifies(timeout=SAMPLE_TIMEOUT_S, stop_after=1):
        if notify.payload == str(run_id):
            return
    raise TimeoutError(f"run {run_id} did not complete within {SAMPLE_TIMEOUT_S}s")
