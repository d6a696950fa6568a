"""Private PostgreSQL clusters and a PgBouncer, started from the local binaries.

Fault tests restart, crash, replicate and promote servers; they do it to clusters of
their own (``initdb`` in a temporary directory, on a free port), never to the shared
server. As root, the server binaries and ``pgbouncer`` run as ``postgres`` (neither
runs as root), and their directories belong to it.

- ``Cluster``: ``initdb`` + ``pg_ctl start``; ``restart(mode)`` (``fast`` or
  ``immediate``: a crash, then crash recovery), ``stop(mode)``, ``promote()``;
  ``replica()`` is a streaming standby made with ``pg_basebackup -R``.
- ``PgBouncer``: Debian's ``pgbouncer`` with stock settings but for the pool mode
  (``transaction`` by default), ``auth_type = trust``, on a free port, in front of one
  cluster: what operators put between the reactor and the database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from prometheus.conninfo import ConnInfo

SERVER_USER = "postgres"
START_TIMEOUT_S = 60


def server_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, else the newest Debian install."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (str(p) for p in (Path("/usr/sbin/pgbouncer"),) if p.exists()), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user() -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []


def _workdir(prefix: str) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(workdir, SERVER_USER)
    return workdir


@dataclass
class Cluster:
    """One PostgreSQL cluster under ``workdir``/``name``, on ``port`` (127.0.0.1 and a
    socket in ``workdir``)."""

    bindir: Path
    workdir: Path
    name: str
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.workdir / self.name

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> Cluster:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SERVER_USER,
            "--auth=trust",  # also for replication connections from 127.0.0.1
            "--no-sync",
            "-E",
            "UTF8",
        )
        return self

    def start(self) -> Cluster:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.log), "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m MODE``: returns once the server accepts connections again
        (after crash recovery, for ``immediate``)."""
        self._pg_ctl("-m", mode, "-l", str(self.log), "restart")

    def promote(self) -> None:
        self._pg_ctl("promote")

    def in_recovery(self) -> bool:
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return bool(row and row[0])

    def replica(self, name: str) -> Cluster:
        """A streaming standby of this cluster (``pg_basebackup -R``), started."""
        standby = Cluster(self.bindir, self.workdir, name)
        standby._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SERVER_USER,
            "-D",
            str(standby.data),
            "-R",  # standby.signal and primary_conninfo: a streaming replica
            "-X",
            "stream",
            "--no-sync",
            "-c",
            "fast",
        )
        return standby.start()

    def wait_replayed(self, standby: Cluster, timeout: float = 30.0) -> None:
        """Until ``standby`` has replayed everything this primary has written so far."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            assert row is not None
            target = row[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(standby.url(), autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if row and row[0]:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{standby.name} did not replay {target} in {timeout}s")
                time.sleep(0.02)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(START_TIMEOUT_S), *args)

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*_as_server_user(), str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise AssertionError(
                f"{tool} {' '.join(args)} failed ({done.returncode}):"
                f" {done.stdout}{done.stderr}\nserver log:\n{log}"
            )


@contextmanager
def pgbouncer_in_front_of(
    server_url: str, *, pool_mode: str = "transaction"
) -> Iterator[PgBouncer]:
    """A PgBouncer of its own before a server this test does not own (it never touches
    the server itself)."""
    info = ConnInfo.parse(server_url, name="the test server URL")
    workdir = _workdir("prometheus-pgbouncer-")
    bouncer = PgBouncer(
        workdir,
        info.hosts[0] if info.hosts else "127.0.0.1",
        int(info.ports[0] if info.ports else 5432),
        pool_mode=pool_mode,
        user=info.params.get("user", SERVER_USER),
    )
    try:
        yield bouncer.start()
    finally:
        bouncer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def private_clusters() -> Iterator[ClusterFactory]:
    """A factory of clusters in one temporary directory; every one is stopped (immediate)
    and the directory removed at exit."""
    bindir = server_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    factory = ClusterFactory(bindir, _workdir("prometheus-clusters-"))
    try:
        yield factory
    finally:
        factory.close()


@dataclass
class ClusterFactory:
    bindir: Path
    workdir: Path
    started: list[Cluster] = field(default_factory=list)
    bouncers: list[PgBouncer] = field(default_factory=list)

    def primary(self, name: str = "primary") -> Cluster:
        cluster = Cluster(self.bindir, self.workdir, name).init().start()
        self.started.append(cluster)
        return cluster

    def replica(self, of: Cluster, name: str = "replica") -> Cluster:
        cluster = of.replica(name)
        self.started.append(cluster)
        return cluster

    def pgbouncer(self, target: Cluster, *, pool_mode: str = "transaction") -> PgBouncer:
        bouncer = PgBouncer(self.workdir, "127.0.0.1", target.port, pool_mode=pool_mode)
        self.bouncers.append(bouncer.start())
        return bouncer

    def close(self) -> None:
        for bouncer in self.bouncers:
            bouncer.stop()
        for cluster in self.started:
            with suppress(AssertionError):
                cluster.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


class PgBouncer:
    """``pgbouncer`` in the foreground, as the server user, with an ini of its own."""

    def __init__(
        self, workdir: Path, host: str, port: int, *, pool_mode: str, user: str = SERVER_USER
    ) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.name = f"pgbouncer-{self.port}"
        self.ini = workdir / f"{self.name}.ini"
        self.log = workdir / f"{self.name}.log"
        users = workdir / f"{self.name}.users"
        users.write_text(f'"{user}" ""\n')
        # Stock settings but the ones a private instance needs: where it listens, its
        # files, trust (the user must still be listed), and the pool mode under test.
        self.ini.write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            f"logfile = {self.log}\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            f"pool_mode = {pool_mode}\n"
        )
        if os.geteuid() == 0:
            for path in (self.ini, users):
                shutil.chown(path, SERVER_USER)
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database_url: str) -> str:
        """``database_url`` (a database behind this PgBouncer), through it."""
        info = ConnInfo.parse(database_url, name="the test database URL")
        return info.with_params(host="127.0.0.1", port=str(self.port)).render()

    def start(self) -> PgBouncer:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.proc = subprocess.Popen(
            [*_as_server_user(), binary, str(self.ini)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"pgbouncer did not start: {self.output()}")
            time.sleep(0.02)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
