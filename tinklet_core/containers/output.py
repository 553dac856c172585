"""Both output streams of one container, as batches of text lines, losing none.

Each stream has its own :class:`~tinklet_core.runtime.LineBatcher`, so a line is never glued
together from stdout and stderr, and lines go on in batches, not one call per line. Reading and
handing on are decoupled (:class:`Handoff`): the thread that reads the engine's stream only
queues frames, and a second thread splits and hands on what has queued up meanwhile, in larger
batches the busier the action is. So a chatty action is read at the engine's speed while its
lines are logged, memory stays bounded (a full queue makes the reader wait: nothing is dropped)
and every line stays in order. The bytes each stream delivered are counted, so that
:meth:`OutputLines.catch_up` can take what a live stream missed from an engine's complete log.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

from tinklet_core.containers.engine import STDERR, STDOUT
from tinklet_core.containers.frames import joined
from tinklet_core.runtime import LineBatcher

#: Most bytes of output queued between the reading and the handing-on thread.
QUEUE_LIMIT = 4 * 1024 * 1024
#: Consecutive frames of one stream are joined up to about this many bytes per batch.
BATCH_BYTES = 64 * 1024


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
        """Feed every frame (read here, handed on from a second thread), then emit what is left
        after the last newline of each stream.

        If reading the frames fails, what was read is still handed on but an unfinished last
        line is kept, not emitted, so that :meth:`catch_up` can complete it.
        """
        handoff = Handoff(self.feed)
        try:
            for stream, payload in frames:
                handoff.put(stream, payload)
        finally:
            handoff.finish()
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


class Handoff:
    """Frames from the reading thread to ``feed``, called in order from a thread of its own.

    :meth:`put` queues a frame and returns at once unless :data:`QUEUE_LIMIT` bytes are already
    waiting (then it waits: back-pressure, not loss). :meth:`finish` waits until everything
    queued was handed on, and raises again what ``feed`` raised.
    """

    def __init__(self, feed: Callable[[int, bytes], None], limit: int = QUEUE_LIMIT) -> None:
        self._feed = feed
        self._limit = limit
        self._frames: deque[tuple[int, bytes]] = deque()
        self._queued = 0
        self._finished = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._hand_on, name="output handoff", daemon=True)
        self._thread.start()

    def put(self, stream: int, payload: bytes) -> None:
        """Queue one frame for ``feed``."""
        with self._changed:
            while self._queued >= self._limit and self._error is None:
                self._changed.wait()
            if not self._frames:  # only then can the handing-on thread be waiting
                self._changed.notify_all()
            self._frames.append((stream, payload))
            self._queued += len(payload)

    def finish(self) -> None:
        """Wait until every queued frame was handed on; raise what ``feed`` raised, if anything."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _take(self) -> list[tuple[int, bytes]] | None:
        """Everything queued, once there is something; ``None`` when finished and empty."""
        with self._changed:
            while not self._frames and not self._finished:
                self._changed.wait()
            if not self._frames:
                return None
            taken = list(self._frames)
            self._frames.clear()
            if self._queued >= self._limit:  # only then can the reader be waiting
                self._changed.notify_all()
            self._queued = 0
        return taken

    def _hand_on(self) -> None:
        try:
            while (taken := self._take()) is not None:
                for stream, payload in joined(taken, BATCH_BYTES):
                    self._feed(stream, payload)
        except BaseException as exc:  # raised again by finish()
            with self._changed:
                self._error = exc
                self._frames.clear()
                self._changed.notify_all()
