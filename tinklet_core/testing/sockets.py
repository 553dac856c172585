"""Socket probes the tests and benches use on servers tinklet runs (the metrics endpoint)."""

from __future__ import annotations

import socket
import struct


def closed_by_peer(sock: socket.socket, timeout: float = 0.0) -> bool:
    """True when the other end closes ``sock`` (EOF or reset) within ``timeout`` seconds; with
    ``0``, whether it has already, without waiting. Reads at most one byte."""
    if timeout > 0:
        sock.settimeout(timeout)
    else:
        sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except (BlockingIOError, TimeoutError):
        return False
    except OSError:
        return True


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with RST (SO_LINGER 0), as a client that crashes or a scanner does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
