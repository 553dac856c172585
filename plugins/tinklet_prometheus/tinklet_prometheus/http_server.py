"""A small HTTP server for a few GET endpoints that a hostile neighbour cannot exhaust.

Every connection is a coroutine on one event loop in one thread (not a thread each), and
everything it may cost is bounded by :class:`Limits`:

- at most ``connections`` at once: a new connection beyond that closes the oldest one, so a
  flood of silent connections never locks a scraper out;
- the request head (request line and headers) may be ``head_bytes`` long, else the answer is
  431 and the connection closes;
- the head must arrive within ``head_seconds`` of connecting, and the answer must be taken
  within ``write_seconds``, else the connection closes;
- one request per connection (``Connection: close``), as Prometheus and curl expect.

A client that resets or goes away costs one DEBUG line; nothing is ever printed to stderr, so a
JSON log stays JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

log = logging.getLogger("tinklet.prometheus")

Answer = tuple[int, bytes, str]
"""``(status, body, content type)`` of a response."""
Route = Callable[[str], Answer]
"""What to answer a GET of a path (query string removed)."""

_END_OF_HEAD = b"\r\n\r\n"
_STOP_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    """What one client may cost the server."""

    connections: int = 64
    head_bytes: int = 16 * 1024
    head_seconds: float = 5.0
    write_seconds: float = 10.0


class BoundedHttpServer:
    """Serve ``route`` on ``host``:``port`` (``port`` 0 picks a free one) until :meth:`close`.

    Raises ``OSError`` when the address cannot be resolved or bound.
    """

    def __init__(self, host: str, port: int, route: Route, limits: Limits = Limits()) -> None:
        self._route = route
        self._limits = limits
        self._open: dict[asyncio.Task[None], None] = {}  # oldest first
        listener = _listen(host, port)
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_loop_error)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, sock=listener, limit=limits.head_bytes)
            )
        except BaseException:
            listener.close()
            self._loop.close()
            raise
        self._address: tuple[str, int] = listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._loop.run_forever, name="tinklet-metrics", daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        """The address bound (an IPv6 address without brackets)."""
        return self._address[0]

    @property
    def port(self) -> int:
        """The port bound (the real one when asked for port 0)."""
        return int(self._address[1])

    def url(self, path: str) -> str:
        """``http://HOST:PORT`` + ``path``, with an IPv6 host in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        """Stop listening, drop every open connection and end the loop's thread."""
        if self._loop.is_closed():
            return
        stopped = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(Exception):
            stopped.result(_STOP_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_STOP_SECONDS)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = list(self._open)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[task] = None
        if len(self._open) > self._limits.connections:
            next(iter(self._open)).cancel()  # the oldest goes, so the newest (a scraper) is served
        answered = False
        try:
            await self._exchange(reader, writer)
            answered = True
        except asyncio.CancelledError:
            pass  # evicted, or the server is closing
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as exc:
            log.debug("metrics client went away: %s", type(exc).__name__)
        except Exception as exc:  # never a traceback on stderr: one line, and the server goes on
            log.warning("metrics request failed: %s: %s", type(exc).__name__, exc)
        finally:
            del self._open[task]
            if answered:
                writer.close()  # the answer is out of our buffer: an orderly close
            else:
                writer.transport.abort()  # at once, whatever the client left unsent or unread

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(_END_OF_HEAD), self._limits.head_seconds)
        except asyncio.LimitOverrunError:
            await self._send(writer, "GET", (431, b"request header fields too large\n", _TEXT))
            return
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            await self._send(writer, "GET", (400, b"bad request\n", _TEXT))
            return
        method = parts[0].decode("ascii", "replace")
        if method not in ("GET", "HEAD"):
            await self._send(writer, "GET", (405, b"only GET and HEAD\n", _TEXT), allow=True)
            return
        path = parts[1].decode("latin-1").split("?", 1)[0]
        await self._send(writer, method, self._route(path))

    async def _send(
        self, writer: asyncio.StreamWriter, method: str, answer: Answer, allow: bool = False
    ) -> None:
        status, body, content_type = answer
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if allow:
            lines.append("Allow: GET, HEAD")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if method != "HEAD":
            writer.write(body)
        writer.transport.set_write_buffer_limits(high=0)  # drain() waits for all of it
        await asyncio.wait_for(writer.drain(), self._limits.write_seconds)


_TEXT = "text/plain; charset=utf-8"


def _listen(host: str, port: int) -> socket.socket:
    """One listening TCP socket on the first address ``host`` resolves to (IPv4 or IPv6)."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """The event loop's own troubles (an accept that failed, say) as one line, never a traceback."""
    exc = context.get("exception")
    what = f"{type(exc).__name__}: {exc}" if exc is not None else str(context.get("message", "?"))
    log.warning("metrics server: %s", what)
