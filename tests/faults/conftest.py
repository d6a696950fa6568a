"""Fixtures for fault tests: private clusters that a test may restart, crash or promote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clusters import ClusterFactory, private_clusters, server_bindir


@pytest.fixture
def clusters() -> Iterator[ClusterFactory]:
    """``clusters.primary()``, ``clusters.replica(of)``, ``clusters.pgbouncer(target)``;
    all stopped and removed at teardown."""
    if server_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    with private_clusters() as factory:
        yield factory
