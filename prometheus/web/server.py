"""Serving the console with uvicorn: in the foreground (``prometheus web``), or in a
thread of this process on a port of its own (the benchmark, the tests).

uvicorn's own access and error lines go through the standard logging module; ours are
structlog events (``web.started``, ``web.listener_connected``, ...), on stderr as usual.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from prometheus.config import Settings
from prometheus.errors import PrometheusError
from prometheus.logs import get_logger
from prometheus.web.app import create_app

log = get_logger(__name__)

#: Open event streams end when the server stops; a browser reconnects by itself.
GRACEFUL_SHUTDOWN_SECONDS = 3
STARTUP_SECONDS = 30.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server, except that SIGTERM/SIGINT end it with exit 0 once it has
    drained (as the reactor does): uvicorn itself raises the signal again afterwards, so
    the process would die of it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only; its owner stops this server
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(
    settings: Settings, *, host: str, port: int, read_only: bool, root_path: str = ""
) -> None:
    """Run the console until SIGINT/SIGTERM (uvicorn handles both: it drains and returns)."""
    app = create_app(settings, read_only=read_only)
    settle(app)
    config = _config(app, root_path=root_path)
    server = _Server(config)
    sock = _bind(host, port)
    actions = settings.web_actions_enabled and not read_only
    log.info("web.started", url=_url(sock, root_path), actions=actions)
    server.run(sockets=[sock])


def settle(app: Starlette) -> None:
    """Ready a process that serves the console and nothing else: load the calendars,
    then move every object alive to the permanent generation (``gc.freeze``). A year's
    overview allocates enough to set off a full collection every ten requests or so, and
    walking pandas' and the calendars' objects each time cost ~70 ms of that request.
    Not for a host app that mounts the console: its heap is not ours to freeze."""
    app.state.console.reader.warm()
    gc.collect()
    gc.freeze()


@contextmanager
def running_server(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """The app served by uvicorn in a thread; yields its base URL; stopped on exit."""
    sock = _bind(host, port)
    server = _Server(_config(app))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="web-server", daemon=True
    )
    thread.start()
    try:
        if not _started(server, thread):
            raise PrometheusError("the web server did not start")
        yield _url(sock, "")
    finally:
        server.should_exit = True
        thread.join(GRACEFUL_SHUTDOWN_SECONDS + 10)
        sock.close()


def _config(app: ASGIApp, *, root_path: str = "") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        root_path=root_path,
        # X-Forwarded-Proto/-For are honoured from the addresses in
        # FORWARDED_ALLOW_IPS (uvicorn's variable; default 127.0.0.1): a reverse proxy
        # on the same host works as it is.
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_config=None,  # keep the process's logging as configured
        access_log=False,
        server_header=False,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle off only for sockets that say TCP, and
    # with Nagle on, uvicorn's two writes per response wait ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PrometheusError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket, root_path: str) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{root_path}"


def _started(server: _Server, thread: threading.Thread) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
