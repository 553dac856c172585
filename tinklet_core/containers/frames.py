"""Engine output as ``(stream, payload)`` frames, from the multiplexed byte stream.

Docker's and Podman's attach and logs endpoints send stdout and stderr interleaved in frames
when no TTY is allocated (tinklet never asks for one): an 8-byte header (the stream number in
the first byte, the payload length in the last four, big-endian) and the payload.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any, Protocol

from tinklet_core.containers.engine import STDERR, STDOUT

_HEADER = struct.Struct(">BxxxL")
READ_SIZE = 256 * 1024


class RawReader(Protocol):
    """What frames are read from, e.g. urllib3's ``response.raw``."""

    def read1(self, amt: int) -> bytes:
        """What is available now, up to ``amt`` bytes (at least one unless the stream ended)."""
        ...


class FrameDecoder:
    """Turns byte chunks into ``(stream, payload)`` frames; keeps only an unfinished frame."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        """Add ``chunk``; yield every frame it completes. Stream 0 counts as stdout."""
        data = self._pending + chunk if self._pending else chunk
        size, start = len(data), 0
        while size - start >= _HEADER.size:
            stream, length = _HEADER.unpack_from(data, start)
            end = start + _HEADER.size + length
            if end > size:
                break
            if length:
                yield (STDERR if stream == STDERR else STDOUT), data[start + _HEADER.size : end]
            start = end
        self._pending = data[start:]

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held back."""
        return len(self._pending)


def read_frames(raw: RawReader) -> Iterator[tuple[int, bytes]]:
    """Yield ``(stream, payload)`` frames from ``raw`` as soon as each one is complete.

    Reads whatever has arrived (``read1``), so a container that prints one line a minute is
    seen at once and a fast one is read in large chunks; the frames of one read are joined per
    stream, so a fast writer's many small frames become a few large ones.
    """
    decoder = FrameDecoder()
    while chunk := raw.read1(READ_SIZE):
        yield from joined(decoder.feed(chunk))


def joined(frames: Iterable[tuple[int, bytes]], size: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``frames`` with consecutive payloads of one stream joined into one (of about ``size``
    bytes at most, when given): fewer, larger pieces to split into lines."""
    stream, length = 0, 0
    parts: list[bytes] = []
    for current, payload in frames:
        if parts and (current != stream or (size is not None and length >= size)):
            yield stream, b"".join(parts)
            parts, length = [], 0
        stream = current
        parts.append(payload)
        length += len(payload)
    if parts:
        yield stream, b"".join(parts)


class ResponseFrames:
    """An engine's multiplexed HTTP response (attach or stored logs; requests/urllib3) as
    ``(stream, payload)`` frames, for Docker's and Podman's adapters alike."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return read_frames(self._response.raw)

    def close(self) -> None:
        """Close the connection; a read blocked in another thread returns."""
        shutdown = getattr(self._response.raw, "shutdown", None)  # urllib3 >= 2.3
        if shutdown is not None:
            # Only unblocks a read in progress; refused (RuntimeError, ValueError) when there is
            # none or the connection already went back to the pool. Closing is what matters.
            with suppress(Exception):
                shutdown()
        with suppress(Exception):
            self._response.close()
