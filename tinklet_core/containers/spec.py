"""How an :class:`~tinklet_core.model.Action` becomes one container, for every OCI-style engine.

Pure data: :func:`container_spec` builds a :class:`ContainerSpec` (mounts, env, namespaces,
privilege, labels, name); each engine adapter turns it into its own API's arguments.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from tinklet_core.action_failure import CONTAINER_DIR
from tinklet_core.containers.capabilities import missing_capabilities
from tinklet_core.model import Action
from tinklet_core.proxy import ProxySettings, with_proxy_defaults
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
    """One action volume: a host path (bind mount) or a named volume. Engines create a missing
    host directory or named volume, as Tinkerbell's own worker does."""

    source: str
    target: str
    read_only: bool
    host_path: bool

    @property
    def bind(self) -> str:
        """The volume in docker's bind syntax: ``/host:/ctr:ro`` or ``name:/ctr:rw``."""
        return f"{self.source}:{self.target}:{'ro' if self.read_only else 'rw'}"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything an engine needs to create one action's container.

    An empty ``command`` keeps the image's default; empty ``pid_mode``/``network_mode`` keep the
    engine's private namespaces; ``cap_drop`` is only set together with ``cap_add``.
    """

    name: str
    image: str
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    mounts: tuple[Mount, ...]
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    pid_mode: str = ""
    network_mode: str = ""
    ulimits: tuple[Ulimit, ...] = ()

    @property
    def env_list(self) -> list[str]:
        """The environment as ``KEY=VALUE`` strings."""
        return [f"{key}={value}" for key, value in self.environment]


def container_name(action: Action, suffix: str) -> str:
    """``tinklet-<action name>-<8 hex of the workflow and action ids>-<suffix>``: readable in
    ``docker ps``, different for different actions, unique per run thanks to ``suffix``."""
    readable = _NAME_UNSAFE.sub("-", action.name or action.action_id).strip("-.")[:40] or "action"
    digest = hashlib.sha256(f"{action.workflow_id}\0{action.action_id}".encode()).hexdigest()[:8]
    return f"tinklet-{readable}-{digest}-{suffix}"


def privilege_fields(privilege: Privilege, missing: tuple[str, ...]) -> dict[str, object]:
    """The spec fields for ``privilege`` on a host whose bounding set lacks ``missing``.

    PRIVILEGED sets the privileged flag (host devices, every capability); ALL_CAPS adds every
    capability the host allows (``ALL`` minus ``missing``) without host devices; NONE keeps
    the engine's defaults.
    """
    if privilege is Privilege.PRIVILEGED:
        return {"privileged": True}
    if privilege is Privilege.ALL_CAPS:
        return {"cap_add": ("ALL",), "cap_drop": missing}
    return {}


def host_namespace(value: str) -> str:
    """``host`` when the action asks for the host's namespace, else ``""`` (the engine's
    private default): no other value is passed to an engine."""
    return "host" if value == "host" else ""


def container_spec(
    action: Action,
    image: str,
    privilege: Privilege,
    suffix: str,
    ulimits: tuple[Ulimit, ...] = (),
    missing: tuple[str, ...] | None = None,
    failure_dir: Path | None = None,
    proxy: ProxySettings | None = None,
) -> ContainerSpec:
    """The container for ``action``, running ``image`` (the reference the engine resolved).

    ``missing`` are the capabilities the host's bounding set lacks (read from ``/proc`` when not
    given). ``failure_dir`` is the host directory mounted at ``/tinkerbell`` (see
    :mod:`tinklet_core.action_failure`); ``proxy`` fills the proxy variables the action's env
    does not set.
    """
    mounts = tuple(
        Mount(volume.source, volume.target, volume.read_only, volume.is_host_path)
        for volume in action.volumes
    )
    if failure_dir is not None:
        mounts += (Mount(str(failure_dir), CONTAINER_DIR, read_only=False, host_path=True),)
    lacking = missing_capabilities() if missing is None and privilege is Privilege.ALL_CAPS else missing or ()
    return ContainerSpec(
        name=container_name(action, suffix),
        image=image,
        command=action.command,
        environment=with_proxy_defaults(action.env, proxy or ProxySettings()),
        labels=tuple(action.labels().items()),
        mounts=mounts,
        pid_mode=host_namespace(action.pid_namespace),
        network_mode=host_namespace(action.network_namespace),
        ulimits=ulimits,
        **privilege_fields(privilege, lacking),  # type: ignore[arg-type]
    )
