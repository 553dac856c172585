"""The ``docker`` runtime for tinklet: Tinkerbell actions as containers on a Docker daemon.

This is the plugin's entry-point module (group ``tinklet``, name ``docker``). Importing it is
cheap, which matters because every tinklet start and ``tinklet plugins list`` imports it: it
pulls in only tinklet_core and :mod:`tinklet_docker.runtime`, whose :class:`DockerRuntime` is
the spec's factory (a class, so its hooks can be listed without opening it). docker-py is
imported by ``DockerRuntime.__init__`` through :mod:`tinklet_docker.engine`, so only when the
user chose ``--runtime docker``. Everything but the docker-py calls is the core's shared
container layer (:mod:`tinklet_core.containers`).
"""

from __future__ import annotations

from tinklet_core.hookspecs import hookimpl
from tinklet_core.runtime import RuntimeOption, RuntimeSpec
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
    return [RuntimeSpec("docker", DockerRuntime, summary, options=(DOCKER_HOST,))]
