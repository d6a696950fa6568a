"""PostgreSQL restarted under a few hundred runs (``pg_ctl restart -m fast``, and ``-m
immediate``: a crash and crash recovery), on a private cluster: the reactor reconnects
by itself, and every run completes, each phase exactly once, none FAILED, no attempt
counted against a task."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import create_database, upgrade_database
from tests.faults.conftest import require_server_binaries
from tests.faults.workload import Workload, report
from tests.support import fault_tasks
from tests.support.clusters import Cluster, private_clusters
from tests.support.inprocess import ReactorThreads


@pytest.fixture(scope="module")
def primary() -> Iterator[Cluster]:
    """One cluster for the module: each test restarts it, and works in its own database."""
    require_server_binaries()
    with private_clusters() as clusters:
        yield clusters.primary()


@pytest.fixture
def database(primary: Cluster, request: pytest.FixtureRequest) -> str:
    url = create_database(primary.url(), f"prometheus_{request.node.callspec.id}")
    upgrade_database(url)
    return url


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    engine = make_engine(database, application_name="tests-faults", pool_size=2)
    fault_tasks.create_marker_table(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_restart_mid_workload_loses_and_doubles_nothing(
    mode: str,
    primary: Cluster,
    database: str,
    engine: Engine,
    reactors: ReactorThreads,
) -> None:
    running = reactors.start(
        replace(
            Settings(database_url=database, phase_tasks=fault_tasks.MODULE),
            concurrency=4,
            metrics_port=0,
        )
    )
    running.wait_ready()

    back_at, outcome = Workload(engine).run_through(lambda: primary.restart(mode))

    report(f"pg_ctl restart -m {mode}", back_at, outcome)
    assert running.healthz()[0] == 200
