"""The capabilities this host lets a container have: its capability bounding set.

A container can never hold a capability outside the bounding set of the process that starts
it, and OCI runtimes refuse to start one that asks for it ("unable to apply caps"). So "every
capability the host allows" means ``ALL`` minus what the bounding set lacks, read from the
``CapBnd`` line of ``/proc/self/status`` (the engine's daemon runs on the same kernel; a
capability tinklet itself lacks is treated as missing for the host).
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

#: Linux capability names (without ``CAP_``) by bit number, as in ``linux/capability.h``.
CAPABILITY_NAMES: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip

STATUS = Path("/proc/self/status")


def bounding_set(status_text: str) -> int | None:
    """The ``CapBnd`` mask in a ``/proc/PID/status`` text, ``None`` when it has none."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split(":", 1)[1].strip(), 16)
    return None


def missing_capabilities(status: Path = STATUS) -> tuple[str, ...]:
    """Names of the known capabilities the bounding set lacks; empty when it cannot be read
    (then the engine's own error names the problem)."""
    try:
        mask = bounding_set(status.read_text())
    except OSError:
        return ()
    if mask is None:
        return ()
    return tuple(name for bit, name in enumerate(CAPABILITY_NAMES) if not mask >> bit & 1)


def socket_peer_status(path: str, timeout: float = 2.0) -> Path | None:
    """``/proc/PID/status`` of the process that serves the unix socket ``path`` (its peer
    credentials), ``None`` when it does not answer or lives in another PID namespace."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(path)
            credentials = client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid = struct.unpack("3i", credentials)[0]
    return Path(f"/proc/{pid}/status") if pid > 0 else None


def peer_missing_capabilities(path: str) -> tuple[str, ...] | None:
    """What the bounding set of the process serving the unix socket ``path`` (an engine's
    daemon) lacks; ``None`` when that process cannot be looked at."""
    status = socket_peer_status(path)
    return None if status is None else missing_capabilities(status)


def lacking_in_peer(path: str) -> tuple[str, ...]:
    """Capabilities tinklet's bounding set holds that the bounding set of the process serving
    the unix socket ``path`` lacks: a container spec written from tinklet's own set asks that
    engine for them in vain. Empty when the daemon cannot be looked at."""
    own = set(missing_capabilities())
    return tuple(name for name in peer_missing_capabilities(path) or () if name not in own)
