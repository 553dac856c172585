"""An action's output, from Podman's multiplexed byte streams to text lines, losing none.

Podman sends stdout and stderr interleaved in frames: an 8-byte header (the stream number in the
first byte, the payload length in the last four, big-endian) and the payload. Both the attach
stream and the logs endpoint use this format when no TTY is allocated (tinklet never asks for
one).

Why the runtime attaches and then catches up: Podman 4.3.1 loses lines when *following* the
logs of a fast writer (containers/podman#21914; here 36k of 100k lines went missing, in the
middle of the stream). Attaching *before start* delivered every line in every test, with
back-pressure on a slow reader rather than loss, so that is the live path. As a safety net for
an attach stream that breaks early, the runtime reads the complete log once the container
exited and feeds on only the bytes past those the live stream delivered, per stream
(:meth:`OutputLines.catch_up`): a line cut by the break is completed, nothing is repeated.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from tinklet_core.runtime import LineSplitter

STDOUT = 1
STDERR = 2
_HEADER = struct.Struct(">BxxxL")
_READ_SIZE = 64 * 1024


class RawReader(Protocol):
    """What frames are read from: urllib3's ``response.raw``."""

    def read1(self, amt: int) -> bytes:
        """What is available now, up to ``amt`` bytes (at least one unless the stream ended)."""
        ...


class FrameDecoder:
    """Turns byte chunks into ``(stream, payload)`` frames; keeps only an unfinished frame."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        """Add ``chunk``; yield every frame it completes. Stream 0 counts as stdout."""
        self._buffer += chunk
        start = 0
        while len(self._buffer) - start >= _HEADER.size:
            stream, length = _HEADER.unpack_from(self._buffer, start)
            end = start + _HEADER.size + length
            if end > len(self._buffer):
                break
            if length:
                yield (
                    (STDERR if stream == STDERR else STDOUT),
                    bytes(self._buffer[start + _HEADER.size : end]),
                )
            start = end
        del self._buffer[:start]

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held back."""
        return len(self._buffer)


def read_frames(raw: RawReader) -> Iterator[tuple[int, bytes]]:
    """Yield ``(stream, payload)`` frames from ``raw`` as soon as each one is complete.

    Reads whatever has arrived (``read1``), so a container that prints one line a minute is
    seen at once and a fast one is read in large chunks.
    """
    decoder = FrameDecoder()
    while chunk := raw.read1(_READ_SIZE):
        yield from decoder.feed(chunk)


class OutputLines:
    """Both streams of one container, split into lines with bounded memory.

    Each stream has its own :class:`LineSplitter`, so a line is never glued together from stdout
    and stderr. The bytes each stream delivered are counted, so that :meth:`catch_up` can take
    what the live stream missed from the complete log.
    """

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self.delivered: dict[int, int] = {STDOUT: 0, STDERR: 0}
        self.emitted = 0
        self._splitters = {stream: LineSplitter(self._counting_emit) for stream in (STDOUT, STDERR)}

    def _counting_emit(self, line: str) -> None:
        self.emitted += 1
        self._emit(line)

    def feed(self, stream: int, payload: bytes) -> None:
        """Add one frame's payload; complete lines are emitted at once."""
        self.delivered[stream] += len(payload)
        self._splitters[stream].feed(payload)

    def feed_all(self, frames: Iterable[tuple[int, bytes]]) -> None:
        """Feed every frame, then emit what is left after the last newline of each stream.

        If reading the frames fails, an unfinished last line is kept, not emitted, so that
        :meth:`catch_up` can complete it.
        """
        for stream, payload in frames:
            self.feed(stream, payload)
        self.close()

    def catch_up(self, complete: Iterable[tuple[int, bytes]]) -> int:
        """Feed on from ``complete`` (the whole output again) past the bytes already delivered.

        Returns how many lines that emitted: 0 when the live stream missed nothing.
        """
        before = self.emitted
        seen = {STDOUT: 0, STDERR: 0}
        for stream, payload in complete:
            already = self.delivered[stream] - seen[stream]
            seen[stream] += len(payload)
            if already < len(payload):
                self.feed(stream, payload[max(already, 0) :])
        self.close()
        return self.emitted - before

    def close(self) -> None:
        """Emit each stream's unterminated last line, if any."""
        for splitter in self._splitters.values():
            splitter.close()
