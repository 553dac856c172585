"""Both output streams of one container, as batches of text lines, losing none.

Each stream has its own :class:`~tinklet_core.runtime.LineBatcher`, so a line is never glued
together from stdout and stderr, and lines go on in batches (one call per frame, not per line):
the reading thread does little per line, so a chatty action is read at the engine's speed. The
bytes each stream delivered are counted, so that :meth:`OutputLines.catch_up` can take what a
live stream missed from an engine's complete log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tinklet_core.containers.engine import STDERR, STDOUT
from tinklet_core.runtime import LineBatcher


class OutputLines:
    """Frames in, batches of lines out (to ``emit_lines``), per stream, in order."""

    def __init__(self, emit_lines: Callable[[list[str]], None]) -> None:
        self._emit_lines = emit_lines
        self.delivered: dict[int, int] = {STDOUT: 0, STDERR: 0}
        self.emitted = 0
        #: Set when reading the live stream failed before its end.
        self.broken = False
        self._batchers = {stream: LineBatcher(self._counting_emit) for stream in (STDOUT, STDERR)}

    def _counting_emit(self, lines: list[str]) -> None:
        self.emitted += len(lines)
        self._emit_lines(lines)

    def feed(self, stream: int, payload: bytes) -> None:
        """Add one frame's payload; its complete lines are emitted at once."""
        self.delivered[stream] += len(payload)
        self._batchers[stream].feed(payload)

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
        for batcher in self._batchers.values():
            batcher.close()
