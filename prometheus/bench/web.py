"""``bench web``: how long the console takes to answer, server-side, over real HTTP.

A scratch database holds a year of sessions for every configured region (about 1,000
runs with their audit events, batches and heartbeats: most COMPLETED, some FAILED, the
last days waiting for a dataset). The console is served by uvicorn in this process and
asked over a keep-alive loopback connection: each sample is one whole request, database
reads, check problems and template rendering included.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from prometheus.bench import Progress, silent
from prometheus.calendar import TradingCalendar
from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import scratch_database
from prometheus.db.queries import query
from prometheus.errors import PrometheusError
from prometheus.percentiles import summary_ms
from prometheus.pipeline.phases import Phase
from prometheus.web.app import create_app
from prometheus.web.server import running_server, settle

WARMUP_REQUESTS = 5
WAITING_DAYS = 3  # the newest sessions still wait for a dataset
FAIL_EVERY = 37  # one run in 37 failed in SIGNALS_DONE


def measure_web(
    settings: Settings,
    *,
    sessions: int = 252,
    requests: int = 50,
    today: date | None = None,
    progress: Progress = silent,
) -> dict[str, Any]:
    assert settings.database_url is not None
    calendar = TradingCalendar(settings.region_exchanges)
    progress("creating a scratch database")
    with scratch_database(settings.database_url, prefix="prometheus_bench") as url:
        engine = make_engine(url, application_name="prometheus-bench", pool_size=1)
        try:
            progress(f"seeding {sessions} sessions of {len(calendar.regions)} regions")
            runs, events = _seed(engine, calendar, sessions, today or date.today())
        finally:
            engine.dispose()
        progress("starting the console (calendars loaded first)")
        app = create_app(replace(settings, database_url=url, web_user=None, web_password=None))
        settle(app)  # as `prometheus web` readies its process
        with running_server(app) as base_url:
            pages = {
                "overview": f"/?sessions={sessions}",
                "run_page": "/runs/1",
                "runs_list": "/runs?phase=COMPLETED&page=2",
            }
            result: dict[str, Any] = {"regions": len(calendar.regions), "runs": runs}
            result["events"] = events
            for name, path in pages.items():
                progress(f"GET {path}: {WARMUP_REQUESTS} + {requests} requests")
                samples, cpu, size = _timed_gets(base_url, path, requests)
                result[f"{name}_kb"] = round(size / 1024, 1)
                result.update(summary_ms(samples, f"{name}_"))
                result[f"{name}_cpu_ms"] = round(cpu / requests * 1000, 3)
    return result


def _seed(engine: Engine, calendar: TradingCalendar, sessions: int, today: date) -> tuple[int, int]:
    """Runs for the last ``sessions`` sessions of every region, moved through the phases
    by set-based statements that the triggers audit like any other writer's."""
    start = today - timedelta(days=sessions * 7 // 5 + 20)
    with engine.begin() as conn:
        newest: list[date] = []
        for region in calendar.regions:
            days = [s.date for s in calendar.sessions(region, start, today)][-sessions:]
            newest.extend(days[-WAITING_DAYS:])
            conn.execute(query("bench_web_runs"), {"region": region, "dates": days})
        waiting_from = min(newest)
        steps = [
            (Phase.WAITING_FOR_DATA, Phase.DATA_READY, 1),
            (Phase.DATA_READY, Phase.SIGNALS_DONE, 1),
            (Phase.SIGNALS_DONE, Phase.FAILED, FAIL_EVERY),
            (Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE, 1),
            (Phase.UNIVERSES_DONE, Phase.COMPLETED, 1),
        ]
        for from_phase, to_phase, every in steps:
            conn.execute(
                query("bench_web_move"),
                {
                    "from_phase": from_phase,
                    "to_phase": to_phase,
                    "before": waiting_from,
                    "every": every,
                    "error": "Traceback (most recent call last):\n  ...\nValueError: bench",
                },
            )
        conn.execute(query("bench_web_batches"))
        conn.execute(query("bench_web_heartbeats"))
        runs = conn.execute(query("bench_count_runs")).scalar_one()
        events = conn.execute(query("bench_count_events")).scalar_one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(query("bench_web_vacuum"))
    return int(runs), int(events)


def _timed_gets(base_url: str, path: str, requests: int) -> tuple[list[float], float, int]:
    """Seconds per GET of ``path`` on one keep-alive connection, after a warm-up (which
    also fills the calendar's cache, as any running console's first request does); the
    CPU seconds this process spent on the measured ones (the server's work, and the
    client's little), which a busy machine inflates less than the wall time; the size."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    samples: list[float] = []
    size = 0
    cpu_started = 0.0
    try:
        for index in range(WARMUP_REQUESTS + requests):
            if index == WARMUP_REQUESTS:
                cpu_started = time.process_time()
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise PrometheusError(f"GET {path}: HTTP {response.status}")
            if index >= WARMUP_REQUESTS:
                samples.append(elapsed)
            size = len(body)
        cpu = time.process_time() - cpu_started
    finally:
        conn.close()
    return samples, cpu, size
