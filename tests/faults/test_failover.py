"""A failover mid-workload: the primary of a streaming pair stops (``-m immediate``), its
standby (``pg_basebackup -R``) is promoted, and a reactor on the pair's multi-host URL
(``target_session_attrs=read-write``) follows to the new primary by itself. Replication
is synchronous, so nothing committed is lost with the old primary: every run completes,
each phase exactly once, none FAILED, no attempt counted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from sqlalchemy import Engine

from prometheus.config import Settings
from prometheus.db.connect import make_engine
from prometheus.db.databases import create_database, upgrade_database
from tests.faults.workload import Workload, report
from tests.support import fault_tasks
from tests.support.clusters import Cluster, ClusterFactory
from tests.support.inprocess import ReactorThreads

DATABASE = "prometheus"


@pytest.fixture
def pair(clusters: ClusterFactory) -> tuple[Cluster, Cluster]:
    primary = clusters.primary()
    upgrade_database(create_database(primary.url(), DATABASE))
    standby = clusters.replica(primary)
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        conn.execute("SELECT pg_reload_conf()")
    primary.wait_replayed(standby)
    return primary, standby


@pytest.fixture
def both_url(pair: tuple[Cluster, Cluster]) -> str:
    primary, standby = pair
    return (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{DATABASE}"
        "?target_session_attrs=read-write"
    )


@pytest.fixture
def engine(both_url: str) -> Iterator[Engine]:
    """The test's own view, on the same URL: it follows the failover as the reactor must."""
    engine = make_engine(both_url, application_name="tests-faults", pool_size=2)
    fault_tasks.create_marker_table(engine)
    yield engine
    engine.dispose()


def test_a_promoted_standby_takes_over_mid_workload_and_nothing_is_lost_or_doubled(
    pair: tuple[Cluster, Cluster], both_url: str, engine: Engine, reactors: ReactorThreads
) -> None:
    primary, standby = pair
    running = reactors.start(
        replace(
            Settings(database_url=both_url, phase_tasks=fault_tasks.MODULE),
            concurrency=4,
            metrics_port=0,
        )
    )
    running.wait_ready()

    def fail_over() -> None:
        primary.stop("immediate")
        standby.promote()

    back_at, outcome = Workload(engine).run_through(fail_over)

    report("failover (primary stopped -m immediate, standby promoted)", back_at, outcome)
    assert not standby.in_recovery()
    assert running.healthz()[0] == 200
