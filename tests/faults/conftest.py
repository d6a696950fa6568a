"""Fixtures for fault tests: private clusters that a test may restart, crash or promote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clusters import ClusterFactory, private_clusters, server_bindir
from tests.support.inprocess import ReactorThreads, reactor_threads


def require_server_binaries() -> None:
    if server_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")


@pytest.fixture
def clusters() -> Iterator[ClusterFactory]:
    """``clusters.primary()``, ``clusters.replica(of)``, ``clusters.pgbouncer(target)``;
    all stopped and removed at teardown."""
    require_server_binaries()
    with private_clusters() as factory:
        yield factory


@pytest.fixture
def reactors(clusters: ClusterFactory) -> Iterator[ReactorThreads]:
    """In-process reactors, stopped and joined before the clusters are stopped."""
    with reactor_threads() as threads:
        yield threads
