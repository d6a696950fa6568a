"""``GET /healthz`` and ``GET /metrics`` on ``--metrics-port``.

/healthz is "ok" (200) while the listener is connected, every maintenance service is
healthy and no worker is wedged, "degraded" (503) otherwise, with the reason in the
report (the reactor builds it): what a load balancer or systemd watchdog needs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthReport = Callable[[], Mapping[str, Any]]


class HealthServer:
    def __init__(
        self, host: str, port: int, *, health: HealthReport, registry: CollectorRegistry
    ) -> None:
        handler = _handler(health, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() waits for serve_forever, which may never have run
            self._server.shutdown()
        self._server.server_close()


def _handler(health: HealthReport, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                report = dict(health())
                code = 200 if report.get("status") == "ok" else 503
                self._send(code, "application/json", json.dumps(report).encode())
            elif self.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes every few seconds are not news; keep them out of the log."""

    return Handler
