"""``--state-dir``: the host directory that holds each action's ``/tinkerbell`` directory.

A worker in a container (HookOS's ``tink-worker``) hands bind-mount sources to the HOST's
engine, so they must be paths that exist on the host: the state dir must be a directory the
host shares at the same path (HookOS binds ``/worker`` on both sides; the image sets
``TINKLET_STATE_DIR=/worker``). :func:`state_dir_warnings` says at start when it is not.

The state dir is tinklet's alone: ``0700``, owned by tinklet's user, so no other user of the
machine can reach (and plant files in) an action's directory. :func:`private_state_dir` makes it
so, or refuses a directory another user owns.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

STATE_DIR_MODE = 0o700
MOUNTINFO = Path("/proc/self/mountinfo")
_CONTAINER_MARKERS = (Path("/.dockerenv"), Path("/run/.containerenv"))
_LAYERED = ("overlay", "fuse-overlayfs", "aufs")


class StateDirError(OSError):
    """The state dir cannot be made private; ``str()`` is one line naming the problem."""


def private_state_dir(path: Path) -> Path:
    """``path``, created (with its parents) when missing, as a directory only tinklet's user
    may enter: mode 0700, owned by this process's user. A directory we own is tightened to
    0700; a symlink, a non-directory or a directory of another user raises
    :class:`StateDirError` (another user could plant files where tinklet reads an action's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, STATE_DIR_MODE)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"state dir {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise StateDirError(
            f"state dir {path} belongs to uid {info.st_uid}, not to tinklet's user "
            f"(uid {os.geteuid()}): another user could plant files in actions' directories"
        )
    if stat.S_IMODE(info.st_mode) != STATE_DIR_MODE:
        os.chmod(path, STATE_DIR_MODE)
    return path


def in_container(mountinfo: str, markers: Iterable[Path] = _CONTAINER_MARKERS) -> bool:
    """True when this process runs in a Docker or Podman container: their marker file is
    there and the root file system is an image's layers (a marker alone is not enough: some
    machines carry a stray ``/.dockerenv``)."""
    root = [line.split() for line in mountinfo.splitlines() if line.split()[4:5] == ["/"]]
    fstype = next((f[f.index("-") + 1] for f in reversed(root) if "-" in f[5:]), "")
    return fstype in _LAYERED and any(marker.exists() for marker in markers)


def mount_point_of(path: Path, mountinfo: str) -> str:
    """The mount point (from ``/proc/self/mountinfo`` text) that holds ``path``: the longest
    mount point that is ``path`` or one of its parents."""
    target = os.path.abspath(path)
    best = "/"
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best = point
    return best


def shared_with_host(path: Path, mountinfo: str) -> bool:
    """Whether ``path`` inside a container is on a mount of its own (a bind or volume, which
    the host can name) rather than on the container's root file system, which it cannot."""
    return mount_point_of(path, mountinfo) != "/"


def state_dir_warnings(state_dir: Path | None) -> tuple[str, ...]:
    """What to say at start when tinklet runs in a container and the engine's host cannot see
    the state dir (then each action's ``/tinkerbell`` files are lost); nothing otherwise."""
    try:
        mountinfo = MOUNTINFO.read_text()
    except OSError:
        return ()
    if not in_container(mountinfo):
        return ()
    if state_dir is None:
        return (
            "running in a container without --state-dir: actions' /tinkerbell directories would be "
            "in the container's own /tmp, which the host's engine cannot bind; set --state-dir "
            "(TINKLET_STATE_DIR) to a directory the host shares at the same path (HookOS: /worker)",
        )
    if not shared_with_host(state_dir, mountinfo):
        return (
            f"state dir {state_dir} is not shared with the host (not a bind mount in this "
            "container): the host's engine cannot bind actions' /tinkerbell directories from it; "
            "bind the same host path into this container (HookOS binds /worker)",
        )
    return ()
