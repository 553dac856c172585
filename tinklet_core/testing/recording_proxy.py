"""A small HTTP server on loopback that records every request: a forward proxy for tests.

:class:`RecordingHttpServer` listens on ``127.0.0.1`` only. It answers a ``GET`` (a proxy's
absolute ``http://host/path`` target, or a plain ``/path``) with ``200`` and the body
``NAME TARGET``, so the client's output says which server answered; it refuses a ``CONNECT``
(an HTTPS request through the proxy, such as an image pull) with ``502``. Either way the request
line is recorded in :attr:`RecordingHttpServer.requests`. Used as the proxy (and as the server an
action reaches directly) in the runtime suite's proxy tests.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RecordingHttpServer:
    """An HTTP server on ``127.0.0.1`` (a free port) that records ``METHOD TARGET`` of each
    request; close it with :meth:`close` (or use it as a context manager)."""

    def __init__(self, name: str = "proxy") -> None:
        self.name = name
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http {name}", daemon=True)
        self._thread.start()

    def _record(self, line: str) -> None:
        with self._lock:
            self.requests.append(line)

    def seen(self) -> list[str]:
        """The request lines so far (``GET http://host/path``, ``CONNECT host:443``…)."""
        with self._lock:
            return list(self.requests)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._record(f"GET {self.path}")
                body = f"{owner.name} {self.path}\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def do_CONNECT(self) -> None:
                owner._record(f"CONNECT {self.path}")
                self.send_error(502, "the recording proxy opens no tunnels")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads :attr:`RecordingHttpServer.requests`."""

        return Handler

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> RecordingHttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
