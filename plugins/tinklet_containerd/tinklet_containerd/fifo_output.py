"""A task's stdout and stderr through FIFOs the plugin makes and reads.

containerd's shim opens the write ends of the paths a task is created with and copies the
process's output into them; this module makes the FIFOs in a private directory, opens the read
ends *before* the task is created (non-blocking, so opening does not wait for the shim), and
reads both with ``poll``. A FIFO read end reports hang-up only once a writer came and went, so
the iteration waits for the shim, reads until the shim closes both (the process exited and its
output is drained) and then ends. The shim outlives a containerd restart, and so do the FIFOs:
the output keeps flowing while containerd is away.

What is read is also appended to the nerdctl-compatible json log
(:class:`~tinklet_containerd.jsonlog.JsonLogWriter`) before it is handed on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from tinklet_containerd.jsonlog import JsonLogWriter
from tinklet_core.containers.engine import STDERR, STDOUT
from tinklet_core.containers.frames import READ_SIZE, joined

#: Bytes each FIFO buffers (the kernel's default is 64 KiB; 1 MiB is the default upper limit).
PIPE_BUFFER = 1024 * 1024


class FifoPair:
    """The stdout and stderr FIFOs of one task in a private directory, read ends open."""

    def __init__(self, container: str, parent: str | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"tinklet-{container[:40]}-", dir=parent))
        self.paths = {STDOUT: self.directory / "stdout", STDERR: self.directory / "stderr"}
        self.fds: dict[int, int] = {}
        try:
            for stream, path in self.paths.items():
                os.mkfifo(path, 0o600)
                self.fds[stream] = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                with contextlib.suppress(OSError):  # a larger buffer: fewer wake-ups for a chatty action
                    fcntl.fcntl(self.fds[stream], fcntl.F_SETPIPE_SZ, PIPE_BUFFER)
        except OSError:
            self.remove()
            raise

    def close(self) -> None:
        """Close the read ends (idempotent)."""
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = {}

    def remove(self) -> None:
        """Close the read ends and remove the directory."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)


class FifoOutput:
    """The frames of a task's two FIFOs (an :class:`~tinklet_core.containers.engine.OutputStream`),
    logged to ``log`` on the way; :meth:`close` from another thread ends the iteration.

    The thread that iterates owns the descriptors while it does: :meth:`close` only wakes it
    (through a pipe it polls too), and the iteration closes them on its way out.
    """

    def __init__(self, fifos: FifoPair, log: JsonLogWriter | None) -> None:
        self._fifos = fifos
        self._log = log
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._closed = False
        self._iterating = False

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        with self._lock:
            if self._closed:
                return
            self._iterating = True
        poller = select.poll()
        streams = {fd: stream for stream, fd in self._fifos.fds.items()}
        for fd in streams:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        try:
            while streams:
                frames: list[tuple[int, bytes]] = []
                for fd, _event in poller.poll():
                    if fd == self._wake_read:
                        return
                    data = self._read(fd)
                    if data:
                        frames.append((streams[fd], data))
                    elif data is not None:  # end of file: the shim closed its end
                        poller.unregister(fd)
                        del streams[fd]
                for stream, payload in joined(frames):
                    if self._log is not None:
                        self._log.write(stream, payload)
                    yield stream, payload
        finally:
            with self._lock:
                self._iterating = False
                self._release()

    @staticmethod
    def _read(fd: int) -> bytes | None:
        """What the FIFO holds now (``b""`` at its end, ``None`` when nothing is there yet)."""
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            return None

    def _release(self) -> None:
        """Finish the log and close every descriptor (idempotent; under the lock)."""
        log, self._log = self._log, None
        if log is not None:
            log.close()
        self._fifos.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_read = self._wake_write = -1

    def close(self) -> None:
        """Stop the iteration (from any thread); the descriptors are closed once it ended."""
        with self._lock:
            self._closed = True
            if self._iterating:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"x")
            else:
                self._release()
