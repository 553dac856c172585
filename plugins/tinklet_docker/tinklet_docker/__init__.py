"""The ``docker`` runtime for tinklet: Tinkerbell actions as containers on a Docker daemon.

This is the plugin's entry-point module (group ``tinklet``, name ``docker``). Importing it is
cheap, which matters because every tinklet start and ``tinklet plugins list`` imports it: it
pulls in only the core's plugin records. The spec's factory is a
:class:`~tinklet_core.lazy_factory.LazyFactory` naming :class:`tinklet_docker.runtime.DockerRuntime`
and its hooks, so :mod:`tinklet_docker.runtime`, the core's container layer and docker-py are
imported only when the user chose ``--runtime docker`` (``DockerRuntime`` is still importable
from here; that import loads them). Everything but the docker-py calls is the core's shared
container layer (:mod:`tinklet_core.containers`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinklet_core.hookspecs import hookimpl
from tinklet_core.lazy_factory import LazyFactory
from tinklet_core.runtime import RuntimeOption, RuntimeSpec

if TYPE_CHECKING:
    from tinklet_docker.runtime import DockerRuntime

__all__ = ["DOCKER_HOST", "DockerRuntime", "tinklet_runtimes"]


#: The daemon URL option: ``--docker-host``, else ``DOCKER_HOST``, else the local socket.
DOCKER_HOST = RuntimeOption(
    "docker-host",
    "Docker daemon URL (default: DOCKER_HOST, else the local socket)",
    env_fallback="DOCKER_HOST",
)


@hookimpl
def tinklet_runtimes() -> list[RuntimeSpec]:
    """One runtime, ``docker``, with its daemon URL option."""
    summary = "containers on a Docker daemon (docker-py)"
    factory = LazyFactory("tinklet_docker.runtime:DockerRuntime", hooks=("tinklet_execute_action",))
    return [RuntimeSpec("docker", factory, summary, options=(DOCKER_HOST,))]


def __getattr__(name: str) -> Any:
    """``from tinklet_docker import DockerRuntime`` imports the runtime module only then."""
    if name == "DockerRuntime":
        from tinklet_docker.runtime import DockerRuntime

        return DockerRuntime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
