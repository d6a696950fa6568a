"""Find a PostgreSQL server for the test session, in the documented order:

1. ``PROMETHEUS_TEST_DATABASE_URL`` (CI sets it to the machine's server);
2. a Docker engine, through testcontainers;
3. local server binaries (``initdb``/``pg_ctl``): a throw-away cluster;
4. the embedded ``pgserver`` package.

Each yields an admin URL on which the session may create and drop databases.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.support.clusters import private_clusters, server_bindir

ENV_URL = "PROMETHEUS_TEST_DATABASE_URL"


@contextmanager
def postgres_server() -> Iterator[str]:
    if url := os.environ.get(ENV_URL):
        yield url
        return
    if _docker_reachable():
        with _testcontainers_server() as url:
            yield url
        return
    if server_bindir() is not None:
        with _local_cluster() as url:
            yield url
        return
    with _pgserver() as url:
        yield url


def _docker_reachable() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False  # a docker client without an engine is common (CI images, this one)
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no engine, no permission: not reachable
        return False


@contextmanager
def _testcontainers_server() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


def server_tool(name: str, server_version_num: int) -> Path | None:
    """The client program ``name`` (``pg_dump``...) of the server's major version, where
    its ``initdb`` would be: beside the ``initdb`` on PATH, or under /usr/lib/postgresql.
    A tool of another major version may write what this server cannot read, or refuse."""
    major = server_version_num // 10_000
    places = [Path("/usr/lib/postgresql") / str(major) / "bin" / name]
    if bindir := server_bindir():
        places.insert(0, bindir / name)
    for tool in places:
        if tool.exists() and _major_version(tool) == major:
            return tool
    return None


def _major_version(tool: Path) -> int | None:
    """``pg_dump (PostgreSQL) 15.20`` -> 15."""
    out = subprocess.run([str(tool), "--version"], capture_output=True, text=True, check=False)
    words = out.stdout.split()
    return int(words[-1].split(".")[0]) if words and words[-1][:1].isdigit() else None


@contextmanager
def _local_cluster() -> Iterator[str]:
    """A throw-away cluster from the local binaries (initdb + pg_ctl)."""
    with private_clusters() as clusters:
        yield clusters.primary("data").url()


@contextmanager
def _pgserver() -> Iterator[str]:
    from pgserver.postgres_server import get_server

    workdir = Path(tempfile.mkdtemp(prefix="prometheus-pgserver-"))
    server = get_server(workdir, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        with suppress(Exception):
            server.cleanup()
