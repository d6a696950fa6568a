"""An in-tree TCP proxy in front of the PostgreSQL server, to lose the link on purpose.

The idea is psycopg's ``tests/fix_proxy.py`` (a proxy the tests can stop and start),
done with threads instead of a ``pproxy`` subprocess, plus the half-open case of
pg-boss's ``test/halfOpenProxy.ts``:

- ``stop()`` closes every proxied connection and the listening socket, so new
  connections are refused; ``start()`` listens again on the same port;
- ``blackhole()`` keeps every connection open but silently drops all traffic both
  ways, new connections included (accepted, never answered): what a dead link or a
  hung middlebox looks like to a client. ``restore()`` ends it: the blackholed
  connections, whose streams have lost bytes, are closed, and new ones are forwarded.

Everything is on 127.0.0.1; the proxy listens on an ephemeral port chosen at the first
``start()``.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable
from types import TracebackType

from prometheus.conninfo import ConnInfo

POLL_SECONDS = 0.05
CHUNK = 65536


class _Pipe:
    """One client connection and its upstream, pumped by one thread."""

    def __init__(
        self, client: socket.socket, upstream: socket.socket | None, *, blackholed: bool
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.blackholed = blackholed  # set once; a blackholed stream never heals
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._pump, name="proxy-pipe", daemon=True)

    def _pump(self) -> None:
        peers = {self.client: self.upstream}
        if self.upstream is not None:
            peers[self.upstream] = self.client
        try:
            with selectors.DefaultSelector() as selector:
                for sock in peers:
                    selector.register(sock, selectors.EVENT_READ)
                while not self.closing.is_set():
                    for key, _ in selector.select(POLL_SECONDS):
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(CHUNK)
                        if not data:
                            return  # one side closed: close both
                        target = peers[source]
                        if not self.blackholed and target is not None:
                            target.sendall(data)
        except OSError:
            return  # reset, or closed by close()
        finally:
            self._close_sockets()

    def close(self) -> None:
        self.closing.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(5)
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is not None:
                sock.close()


_PipeFilter = Callable[[_Pipe], bool]


class Proxy:
    def __init__(self, server_url: str) -> None:
        url = ConnInfo.parse(server_url, name="the test server URL")
        self.server_url = server_url
        self.target = (url.hosts[0] if url.hosts else "127.0.0.1", int(url.ports[0] or 5432))
        self.host = "127.0.0.1"
        self.port = 0  # chosen at the first start(), kept afterwards
        self._lock = threading.Lock()
        self._pipes: set[_Pipe] = set()
        self._blackholed = False
        self._listening: socket.socket | None = None
        self._accepting = threading.Event()
        self._acceptor: threading.Thread | None = None

    def url(self, database_url: str) -> str:
        """``database_url`` with its host and port pointing at the proxy."""
        url = ConnInfo.parse(database_url, name="the test database URL")
        return url.with_params(host=self.host, port=str(self.port)).render()

    def start(self) -> None:
        """Listen (again, on the same port) and forward new connections."""
        if self._listening is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._listening = sock
        self._accepting.set()
        self._acceptor = threading.Thread(
            target=self._accept, args=(sock,), name="proxy-accept", daemon=True
        )
        self._acceptor.start()

    def stop(self) -> None:
        """Close every connection and stop listening: new connections are refused."""
        self._accepting.clear()
        if self._acceptor is not None:
            self._acceptor.join(5)
            self._acceptor = None
        if self._listening is not None:
            self._listening.close()
            self._listening = None
        self._close_pipes(lambda pipe: True)

    def blackhole(self) -> None:
        """Keep connections open but drop all traffic, on existing and new connections."""
        with self._lock:
            self._blackholed = True
            for pipe in self._pipes:
                pipe.blackholed = True

    def restore(self) -> None:
        """End the blackhole: close the connections it broke, forward new ones again."""
        with self._lock:
            self._blackholed = False
        self._close_pipes(lambda pipe: pipe.blackholed)

    @property
    def connections(self) -> int:
        with self._lock:
            return sum(1 for pipe in self._pipes if not pipe.closing.is_set())

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self, listening: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(listening, selectors.EVENT_READ)
            while self._accepting.is_set():
                if not selector.select(POLL_SECONDS):
                    continue
                try:
                    client, _ = listening.accept()
                except OSError:
                    continue
                self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            blackholed = self._blackholed
        upstream: socket.socket | None = None
        if not blackholed:
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                return
        pipe = _Pipe(client, upstream, blackholed=blackholed)
        with self._lock:
            ended = {p for p in self._pipes if not p.thread.is_alive()}
            self._pipes -= ended
            self._pipes.add(pipe)
        pipe.thread.start()

    def _close_pipes(self, which: _PipeFilter) -> None:
        with self._lock:
            doomed = [pipe for pipe in self._pipes if which(pipe)]
            self._pipes.difference_update(doomed)
        for pipe in doomed:
            pipe.close()
