"""How an :class:`~tinklet_core.model.Action` becomes the arguments of a docker container.

Pure data, no docker-py: the engine hands a :class:`ContainerSpec` to the Docker API as is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from tinklet_core.model import Action, Volume
from tinklet_core.runtime import Privilege


@dataclass(frozen=True)
class ContainerSpec:
    """Everything docker needs to create one action's container.

    ``binds`` use docker's ``SOURCE:TARGET:MODE`` syntax for host paths and named volumes alike
    (docker creates a missing host directory or named volume, as Tinkerbell's own worker does).
    An empty ``command`` keeps the image's default; empty ``pid_mode``/``network_mode`` keep
    docker's defaults.
    """

    name: str
    image: str
    command: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    binds: tuple[str, ...] = ()
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    pid_mode: str = ""
    network_mode: str = ""


def container_spec(action: Action, privilege: Privilege, suffix: str) -> ContainerSpec:
    """The container for ``action`` with ``privilege``; ``suffix`` makes the name unique."""
    return ContainerSpec(
        name=container_name(action, suffix),
        image=action.image,
        command=action.command,
        environment=tuple(f"{key}={value}" for key, value in action.env),
        labels=action.labels(),
        binds=tuple(bind(volume) for volume in action.volumes),
        privileged=privilege is Privilege.PRIVILEGED,
        cap_add=("ALL",) if privilege is Privilege.ALL_CAPS else (),
        pid_mode=action.pid_namespace,
        network_mode=action.network_namespace,
    )


def container_name(action: Action, suffix: str) -> str:
    """``tinklet-<12 hex of the workflow and action ids>-<suffix>``: stable per action, readable
    in ``docker ps``, and unique per run thanks to ``suffix``."""
    digest = hashlib.sha256(f"{action.workflow_id}\0{action.action_id}".encode()).hexdigest()[:12]
    return f"tinklet-{digest}-{suffix}"


def bind(volume: Volume) -> str:
    """A volume in docker's bind syntax: ``/host:/ctr:ro`` or ``name:/ctr:rw``."""
    return f"{volume.source}:{volume.target}:{'ro' if volume.read_only else 'rw'}"
