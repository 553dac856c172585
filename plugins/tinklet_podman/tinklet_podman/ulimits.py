"""Resource limits for action containers where Podman's default ulimits cannot be applied.

As root, Podman gives every container ``nofile`` and ``nproc`` limits of 1048576 (more than
most hosts' limits) unless containers.conf says otherwise. Raising a hard limit needs
CAP_SYS_RESOURCE; in sandboxes whose capability bounding set lacks it every container then
fails to start with "error setting rlimit type 7: operation not permitted". What works there
(checked on Debian's Podman 4.3.1) is either ``default_ulimits = []`` in containers.conf, which
lets containers inherit the Podman service's own limits, or explicit limits no higher than the
service's. Limits equal to *tinklet's* own are not enough: Podman lowers its own ``nproc`` hard
limit to ``kernel.pid_max`` at start (here 32768, below the shell's 96364), so copying
tinklet's ``nproc`` fails with "rlimit type 6".

So the runtime first uses Podman's defaults, and only after such a failure retries with the
limits computed here: the service's own limits when tinklet started the service (read from
``/proc/PID/limits``), otherwise tinklet's limits with ``nproc`` capped at ``kernel.pid_max``.
"""

from __future__ import annotations

import resource
from pathlib import Path

from tinklet_core.containers.spec import Ulimit

_LIMITS = {
    "nofile": ("Max open files", resource.RLIMIT_NOFILE),
    "nproc": ("Max processes", resource.RLIMIT_NPROC),
}
_PID_MAX = Path("/proc/sys/kernel/pid_max")
_UNLIMITED = 2**64 - 1  # RLIM_INFINITY as Podman (Go, uint64) reads it


def is_rlimit_error(message: str) -> bool:
    """True for the OCI runtime's refusal to apply a resource limit."""
    return "error setting rlimit" in message


def _value(text: str) -> int:
    return _UNLIMITED if text == "unlimited" else int(text)


def process_limits(pid: int, proc: Path = Path("/proc")) -> tuple[Ulimit, ...] | None:
    """``nofile`` and ``nproc`` of process ``pid`` (soft and hard), or ``None`` if unreadable."""
    try:
        text = (proc / str(pid) / "limits").read_text()
    except OSError:
        return None
    found: list[Ulimit] = []
    for name, (title, _resource) in _LIMITS.items():
        for line in text.splitlines():
            if line.startswith(title):
                soft, hard = line[len(title) :].split()[:2]
                found.append(Ulimit(name, _value(soft), _value(hard)))
    return tuple(found) if len(found) == len(_LIMITS) else None


def own_limits(pid_max: Path = _PID_MAX) -> tuple[Ulimit, ...]:
    """This process's ``nofile`` and ``nproc`` limits, ``nproc`` capped at ``kernel.pid_max``."""
    try:
        cap = int(pid_max.read_text().strip())
    except (OSError, ValueError):
        cap = _UNLIMITED
    found = []
    for name, (_title, which) in _LIMITS.items():
        soft, hard = (_UNLIMITED if v == resource.RLIM_INFINITY else v for v in resource.getrlimit(which))
        if name == "nproc":
            soft, hard = min(soft, cap), min(hard, cap)
        found.append(Ulimit(name, soft, hard))
    return tuple(found)


def fallback_limits(service_pid: int | None) -> tuple[Ulimit, ...]:
    """The explicit limits to retry with: the service's own when known, else :func:`own_limits`."""
    if service_pid is not None:
        limits = process_limits(service_pid)
        if limits is not None:
            return limits
    return own_limits()
