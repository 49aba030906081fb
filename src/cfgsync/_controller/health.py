"""``/healthz``, ``/readyz`` and ``/metrics`` over HTTP.

I/O: a small threaded HTTP server. Liveness fails when a watch thread died; readiness holds until every
cache has its first list (a follower is ready too: it holds a warm cache to take over with). A probe's
answer may carry detail lines after ``ok`` (held deletes) that do not change its status.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("cfgsync.health")


class HealthServer:
    """Serves the three endpoints on ``address:port`` (port 0 picks a free one; see ``port``)."""

    def __init__(
        self,
        *,
        address: str,
        port: int,
        registry: CollectorRegistry,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        ready_detail: Callable[[], list[str]] = list,
    ) -> None:
        probes = {"/healthz": healthy, "/readyz": ready}
        details = {"/readyz": ready_detail}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in probes:
                    good = probes[path]()
                    lines = ["ok" if good else "not ok", *details.get(path, list)()]
                    body = "".join(f"{line}\n" for line in lines).encode()
                    self._send(200 if good else 503, body, "text/plain; charset=utf-8")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- the base class names it so
                del format, args  # probes every few seconds would flood the log

        self._handler = Handler
        self._address = (address, port)
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        """The port it listens on (once started)."""
        return int(self._server.server_address[1]) if self._server is not None else self._address[1]

    def start(self) -> None:
        """Bind the port and serve in a background thread."""
        self._server = ThreadingHTTPServer(self._address, self._handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="health", daemon=True).start()
        log.info("serving /healthz, /readyz and /metrics on port %d", self.port)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
