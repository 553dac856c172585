"""List-then-watch over the Kubernetes API, the way client-go's reflector does it.

An :class:`ObjectWatch` first lists the objects (a ``SYNC`` event with all of them), then
watches from the list's ``resourceVersion``; when the server ends a watch it resumes from the
last version it saw, and when that version is too old (410 Gone) it lists again. While the API
server is away (unreachable, 5xx, 429) it tries again with :class:`~tinklet_kube.retry.ApiRetry`'s
backoff, for as long as it is not closed: the action's deadline bounds an outage, not the watch.
Nothing polls.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from tinklet_kube.errors import KubeApiError
from tinklet_kube.retry import ApiRetry

JSON = dict[str, Any]


class ByteStream(Protocol):
    """A streaming response: ``read`` returns ``b""`` at its end; ``interrupt`` ends it from any
    thread; the reading thread ``close``s it."""

    def read(self, size: int = ...) -> bytes:
        """The next bytes of the stream."""
        ...

    def interrupt(self) -> None:
        """End the stream from any thread."""
        ...

    def close(self) -> None:
        """Free the stream (by the reading thread)."""
        ...


class WatchSource(Protocol):
    """What :class:`ObjectWatch` needs from the API (see :class:`tinklet_kube.api.KubeApi`)."""

    def list(
        self, kind: str, *, label_selector: str | None = None, field_selector: str | None = None
    ) -> JSON:
        """A list response with ``items`` and ``metadata.resourceVersion``."""
        ...

    def watch(
        self,
        kind: str,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ByteStream:
        """A watch response: one JSON event per line."""
        ...


@dataclass(frozen=True)
class WatchEvent:
    """``SYNC`` (``objects`` is everything that matches now) or ``ADDED``/``MODIFIED``/``DELETED``
    (``objects`` is the one object)."""

    type: str
    objects: tuple[JSON, ...]


class ObjectWatch:
    """Every change to the ``kind`` objects matching the selectors, until :meth:`close`."""

    def __init__(
        self,
        source: WatchSource,
        kind: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        server_timeout: int = 60,
    ) -> None:
        self._source = source
        self._kind = kind
        self._selectors = {"label_selector": label_selector, "field_selector": field_selector}
        self._server_timeout = server_timeout
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._stream: ByteStream | None = None

    def close(self) -> None:
        """End the iteration (from any thread): a blocked read returns at once."""
        with self._lock:
            self._closed.set()
            stream = self._stream
        if stream is not None:
            stream.interrupt()

    def __iter__(self) -> Iterator[WatchEvent]:
        version: str | None = None
        retry = ApiRetry()
        while not self._closed.is_set():
            try:
                if version is None:
                    listing = self._source.list(self._kind, **self._selectors)
                    version = str(listing.get("metadata", {}).get("resourceVersion") or "")
                    yield WatchEvent("SYNC", tuple(listing.get("items") or ()))
                for event in self._watch_once(version):
                    if event is None:  # 410 Gone: the version is too old, list again
                        version = None
                        break
                    retry.reset()
                    obj = event.objects[0]
                    version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                    if event.type != "BOOKMARK":
                        yield event
            except KubeApiError as exc:
                if exc.status == 410:  # Gone as the answer itself rather than as an event
                    version = None
                    continue
                if not exc.passing:
                    raise
                self._closed.wait(retry.delay(exc))  # the API is away: resume from ``version``

    def _watch_once(self, version: str) -> Iterator[WatchEvent | None]:
        stream = self._source.watch(
            self._kind, resource_version=version, timeout_seconds=self._server_timeout, **self._selectors
        )
        with self._lock:
            self._stream = stream
            closed = self._closed.is_set()
        try:
            if closed:
                return
            for line in _lines(stream):
                event = json.loads(line)
                kind = str(event.get("type") or "")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        yield None
                        return
                    raise KubeApiError(
                        f"watching {self._kind} failed: {obj.get('message') or obj}",
                        status=int(obj.get("code") or 500),
                        reason=str(obj.get("reason") or ""),
                    )
                yield WatchEvent(kind, (obj,))
        finally:
            stream.close()


def _lines(stream: ByteStream) -> Iterator[bytes]:
    pending = bytearray()
    while True:
        chunk = stream.read()
        if not chunk:
            return
        pending += chunk
        while True:
            newline = pending.find(b"\n")
            if newline < 0:
                break
            line = bytes(pending[:newline]).strip()
            del pending[: newline + 1]
            if line:
                yield line
