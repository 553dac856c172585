"""What a Podman container for one action looks like, as plain data (no podman-py here).

:func:`container_spec` turns an :class:`~tinklet_core.model.Action` and the privilege setting
into a :class:`ContainerSpec`; :mod:`tinklet_podman.engine` turns that into podman-py's
``containers.create`` arguments. Keeping the two apart makes the mapping testable without a
Podman service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tinklet_core.model import Action
from tinklet_core.runtime import Privilege

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


@dataclass(frozen=True)
class Ulimit:
    """One resource limit for the container's processes (``nofile``, ``nproc``…)."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Mount:
    """One action volume: a host path (bind mount) or a named Podman volume."""

    source: str
    target: str
    read_only: bool
    host_path: bool


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one action's container."""

    name: str
    image: str
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    mounts: tuple[Mount, ...]
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    pid_mode: str = ""
    network_mode: str = ""
    ulimits: tuple[Ulimit, ...] = ()


def container_name(action: Action, suffix: str) -> str:
    """A readable, valid and unique container name: ``tinklet-<action name>-<suffix>``."""
    readable = _NAME_UNSAFE.sub("-", action.name or action.action_id).strip("-.")[:40] or "action"
    return f"tinklet-{readable}-{suffix}"


def container_spec(
    action: Action, image: str, privilege: Privilege, suffix: str, ulimits: tuple[Ulimit, ...] = ()
) -> ContainerSpec:
    """The container for ``action``, running ``image`` (its resolved reference).

    ``privilege`` maps as the core documents: PRIVILEGED sets Podman's privileged flag (host
    devices, every capability); ALL_CAPS adds every capability without it; NONE keeps Podman's
    defaults. A ``host`` pid or network namespace is passed through; anything else leaves
    Podman's private default.
    """
    return ContainerSpec(
        name=container_name(action, suffix),
        image=image,
        command=action.command,
        environment=action.env,
        labels=tuple(action.labels().items()),
        mounts=tuple(
            Mount(volume.source, volume.target, volume.read_only, volume.is_host_path)
            for volume in action.volumes
        ),
        privileged=privilege is Privilege.PRIVILEGED,
        cap_add=("ALL",) if privilege is Privilege.ALL_CAPS else (),
        pid_mode="host" if action.pid_namespace == "host" else "",
        network_mode="host" if action.network_namespace == "host" else "",
        ulimits=ulimits,
    )
