"""A Podman container's output read straight from its conmon, not relayed by the service.

Podman runs every container under a small monitor, conmon, which reads the container's stdout
and stderr, writes them to the container's log and to every client connected to its *attach
socket* (``attach`` in the container's bundle directory, ``StaticDir`` in an inspect). The
service's attach endpoint is such a client that copies each packet into an HTTP response; on
this 2-core machine that relay made a chatty action about 1.3 times slower than ``podman run``, which
(run locally) connects to conmon itself. This module does what the local CLI does:

- The container is *initialized* first (its runtime container exists, the action's process
  waits to be started) so conmon and its socket exist; then the socket is connected; then the
  container is started. Connecting before starting is what keeps the first line: conmon
  accepts a waiting connection as soon as it looks, long before a started process can print.
- The socket is ``SOCK_SEQPACKET``: each packet is one byte naming the stream (2 stdout, 3
  stderr) and up to 8 KiB of output. conmon writes to a connected client with blocking writes:
  a slow reader slows the container, nothing is dropped.
- The path is opened through ``/proc/self/fd`` because a bundle path is longer than a unix
  socket address may be (108 bytes), as Podman itself does.
- conmon closes the connection when the container has exited and its output is drained: the
  iteration ends there.

Only a service on this host (a ``unix://`` socket) can have a bundle directory tinklet can
open; anything that fails here (another mount namespace, no permission, a Podman that keeps the
socket elsewhere) leaves the caller to attach through the service as before.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

from tinklet_core.containers.engine import STDERR, STDOUT
from tinklet_core.containers.frames import READ_SIZE, joined

#: conmon's packet: one byte naming the stream, then at most this many bytes of output.
PAYLOAD_BYTES = 8192
#: conmon's stream numbers (its stdin is 1).
CONMON_STDOUT = 2
CONMON_STDERR = 3
ATTACH_SOCKET = "attach"


class ConmonAttachment:
    """The output of one container from its conmon's attach socket, as ``(stream, payload)``
    frames (an :class:`~tinklet_core.containers.engine.OutputStream`)."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._closed = False

    @classmethod
    def connect(cls, bundle_dir: str) -> ConmonAttachment:
        """Connect to the attach socket in ``bundle_dir``; :class:`OSError` when that fails."""
        directory = os.open(bundle_dir, os.O_PATH | os.O_DIRECTORY)
        try:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
            try:
                connection.connect(f"/proc/self/fd/{directory}/{ATTACH_SOCKET}")
            except OSError:
                connection.close()
                raise
        finally:
            os.close(directory)
        return cls(connection)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Frames until conmon closes the connection (the container exited) or :meth:`close`.

        After the blocking read of one packet, the packets already waiting are read too
        (without blocking, up to :data:`~tinklet_core.containers.frames.READ_SIZE` bytes) and
        joined per stream, so a fast writer's thousands of 8 KiB packets are handed on as a
        few large frames and a slow one's single line at once.
        """
        while (packets := self._receive()) is not None:
            yield from joined(packets)

    def _receive(self) -> list[tuple[int, bytes]] | None:
        """The frames of the packets waiting now (blocking for the first); ``None`` at the end."""
        frames: list[tuple[int, bytes]] = []
        size = 0
        flags = 0
        while size < READ_SIZE:
            try:
                packet = self._connection.recv(PAYLOAD_BYTES + 1, flags)
            except BlockingIOError:
                break
            except OSError:
                if self._closed:  # closed from another thread: the end, not a break
                    return None
                raise
            if not packet:
                return frames if flags else None
            stream = STDERR if packet[0] == CONMON_STDERR else STDOUT if packet[0] == CONMON_STDOUT else 0
            if stream and len(packet) > 1:
                frames.append((stream, packet[1:]))
                size += len(packet) - 1
            flags = socket.MSG_DONTWAIT
        return frames

    def close(self) -> None:
        """Shut the connection down (a read blocked in another thread returns) and close it."""
        self._closed = True
        with contextlib.suppress(OSError):  # already shut down by conmon
            self._connection.shutdown(socket.SHUT_RDWR)
        self._connection.close()
