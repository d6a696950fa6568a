"""Find a PostgreSQL server for the test session, in the documented order:

1. ``PROMETHEUS_TEST_DATABASE_URL`` (CI sets it to the machine's server);
2. a Docker engine, through testcontainers;
3. local server binaries (``initdb``/``pg_ctl``): a throw-away cluster;
4. the embedded ``pgserver`` package.

Each yields an admin URL on which the session may create and drop databases.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

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
    if bindir := _server_bindir():
        with _local_cluster(bindir) as url:
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


def _server_bindir() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def server_tool(name: str, server_version_num: int) -> Path | None:
    """The client program ``name`` (``pg_dump``...) of the server's major version, where
    its ``initdb`` would be: beside the ``initdb`` on PATH, or under /usr/lib/postgresql.
    A tool of another major version may write what this server cannot read, or refuse."""
    major = server_version_num // 10_000
    places = [Path("/usr/lib/postgresql") / str(major) / "bin" / name]
    if bindir := _server_bindir():
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
def _local_cluster(bindir: Path) -> Iterator[str]:
    """initdb + pg_ctl in a temporary directory; as root, run them as ``postgres``."""
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-pg-"))
    if as_user:
        shutil.chown(workdir, "postgres")
    data = workdir / "data"
    port = _free_port()
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(workdir / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
