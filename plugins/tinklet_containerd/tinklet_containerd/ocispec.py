"""The OCI runtime spec (``config.json``) of one action's container, built from the container
layer's :class:`~tinklet_core.containers.spec.ContainerSpec` and the image's configuration.

containerd runs what the client hands it: there is no daemon filling in defaults as dockerd
does. So this module writes what containerd's Go client writes by default for a Linux
container (namespaces, the standard mounts, masked and read-only paths, the default
capabilities, no devices) and then applies the action, with Docker's semantics:

- the action's command replaces the image's ``CMD`` and keeps its ``ENTRYPOINT``;
- the environment is the image's, then the action's (the action wins per variable);
- volumes are recursive bind mounts (``rbind``, ``ro``/``rw``); a missing host directory is
  created (:func:`create_missing_sources`), as Docker and the tink agent do;
- ``host`` pid/network namespaces join the host's (with the host's network, the host name is
  the host's); otherwise the container has namespaces of its own (its network comes from
  :mod:`tinklet_containerd.cni`); ``/etc/resolv.conf``, ``/etc/hosts`` and ``/etc/hostname``
  are the files :mod:`tinklet_containerd.dnsfiles` writes;
- ``privileged``: every capability the host's bounding set allows, every host device and
  access to all devices, nothing masked; ``cap_add``/``cap_drop`` as Docker reads them.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tinklet_containerd.images import ImageConfig
from tinklet_core.containers.capabilities import CAPABILITY_NAMES, missing_capabilities
from tinklet_core.containers.engine import EngineFailure
from tinklet_core.containers.spec import ContainerSpec

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: containerd's default capabilities for a container (its ``oci.populateDefaultUnixSpec``).
DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip

MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap",
    "/proc/scsi",
)  # fmt: skip
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

#: Directories under /dev whose nodes are not handed to a privileged container.
_SKIPPED_DEVICE_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def _standard_mounts(privileged: bool) -> list[dict[str, Any]]:
    sysfs = ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sysfs},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    ]  # fmt: skip


def capabilities(spec: ContainerSpec, missing: tuple[str, ...] | None = None) -> list[str]:
    """The container's capabilities (``CAP_…``), never outside the host's bounding set."""
    lacking = set(missing_capabilities() if missing is None else missing)
    if spec.privileged or "ALL" in spec.cap_add:
        names = set(CAPABILITY_NAMES)
    else:
        names = set(DEFAULT_CAPABILITIES) | {name.removeprefix("CAP_") for name in spec.cap_add}
    names -= {name.removeprefix("CAP_") for name in spec.cap_drop} | lacking
    return [f"CAP_{name}" for name in CAPABILITY_NAMES if name in names]


def process_args(spec: ContainerSpec, image: ImageConfig) -> list[str]:
    """Docker's semantics: the image's entrypoint, then the action's command (else the image's)."""
    args = [*image.entrypoint, *(spec.command or image.cmd)]
    if not args:
        raise EngineFailure(
            f"container create failed: image {spec.image} has no command and the action gives none"
        )
    return args


def environment(spec: ContainerSpec, image: ImageConfig) -> list[str]:
    """PATH by default, then the image's variables, then the action's; later ones win."""
    merged: dict[str, str] = {}
    for entry in (DEFAULT_PATH, *image.env, *spec.env_list):
        key, _, _ = entry.partition("=")
        merged[key] = entry
    return list(merged.values())


def user(image: ImageConfig) -> dict[str, int]:
    """The image's numeric ``uid[:gid]`` (root otherwise: names would need the image's passwd)."""
    uid, _, gid = image.user.partition(":")
    return {"uid": int(uid) if uid.isdigit() else 0, "gid": int(gid) if gid.isdigit() else 0}


def host_devices(root: Path = Path("/dev")) -> Iterator[dict[str, Any]]:
    """Every character and block device node under ``root``, as OCI ``linux.devices`` entries."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [name for name in subdirs if name not in _SKIPPED_DEVICE_DIRS]
        for name in files:
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            kind = "c" if stat.S_ISCHR(info.st_mode) else "b" if stat.S_ISBLK(info.st_mode) else None
            if kind is None or path == "/dev/console":
                continue
            yield {
                "path": path, "type": kind, "major": os.major(info.st_rdev), "minor": os.minor(info.st_rdev),
                "fileMode": stat.S_IMODE(info.st_mode), "uid": info.st_uid, "gid": info.st_gid,
            }  # fmt: skip


def volume_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    """The action's volumes as bind mounts; a named volume is refused (containerd has none)."""
    mounts = []
    for mount in spec.mounts:
        if not mount.host_path:
            raise EngineFailure(
                f"container create failed: volume {mount.source}:{mount.target} is a named volume; "
                "the containerd runtime mounts host paths only"
            )
        options = ["rbind", "ro" if mount.read_only else "rw"]
        mounts.append(
            {"destination": mount.target, "type": "bind", "source": mount.source, "options": options}
        )
    return mounts


def create_missing_sources(spec: ContainerSpec) -> None:
    """Create each missing host directory the action mounts (Docker's and the agent's habit)."""
    for mount in spec.mounts:
        if mount.host_path and not os.path.lexists(mount.source):
            try:
                os.makedirs(mount.source, exist_ok=True)
            except OSError as exc:
                raise EngineFailure(
                    f"container create failed: cannot create {mount.source}: {exc.strerror}"
                ) from None


def file_mounts(files: dict[str, str]) -> list[dict[str, Any]]:
    """Bind mounts of single host files (``{container path: host path}``), writable."""
    return [
        {"destination": target, "type": "bind", "source": source, "options": ["rbind", "rw"]}
        for target, source in files.items()
    ]


def hostname(spec: ContainerSpec) -> str:
    """The host's name with its network, else the container's name (at most 63 characters)."""
    return socket.gethostname() if spec.network_mode == "host" else spec.name[:63]


def oci_spec(
    spec: ContainerSpec,
    image: ImageConfig,
    namespace: str,
    files: dict[str, str] | None = None,
    missing: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The OCI runtime spec of ``spec``'s container in containerd namespace ``namespace``;
    ``files`` are single files to mount (``{container path: host path}``: resolv.conf…)."""
    caps = capabilities(spec, missing)
    host_network = spec.network_mode == "host"
    namespaces = [{"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if spec.pid_mode != "host":
        namespaces.insert(0, {"type": "pid"})
    if not host_network:
        namespaces.append({"type": "network"})
    devices: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": f"/{namespace}/{spec.name}",
        "resources": {"devices": devices},
    }
    if spec.privileged:
        devices.append({"allow": True, "access": "rwm"})
        linux["devices"] = list(host_devices())
    else:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    rlimits = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    if spec.ulimits:
        rlimits = [{"type": f"RLIMIT_{u.name.upper()}", "hard": u.hard, "soft": u.soft} for u in spec.ulimits]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": user(image),
            "args": process_args(spec, image),
            "env": environment(spec, image),
            "cwd": image.working_dir or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits,
            "noNewPrivileges": False,  # Docker's default: a setuid tool in the image works
        },
        "root": {"path": "rootfs"},
        "hostname": hostname(spec),
        "mounts": [*_standard_mounts(spec.privileged), *file_mounts(files or {}), *volume_mounts(spec)],
        "linux": linux,
    }
