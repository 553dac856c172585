"""The docker runtime: the core's shared container runtime on a Docker daemon.

This module imports only the standard library and tinklet_core, so the plugin's entry-point
module can name :class:`DockerRuntime` as its factory at no cost; docker-py is imported (through
:mod:`tinklet_docker.engine`) when a :class:`DockerRuntime` is constructed, that is only when
``--runtime docker`` was chosen. Docker needs no quirks: everything else is
:class:`~tinklet_core.containers.runtime.ContainerRuntime`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tinklet_core.containers.capabilities import peer_missing_capabilities
from tinklet_core.containers.runtime import ContainerRuntime
from tinklet_core.proxy import daemon_differences, differences_warning
from tinklet_core.runtime import RuntimeSettings

if TYPE_CHECKING:
    from tinklet_docker.engine import DockerEngine

log = logging.getLogger("tinklet.docker")

#: dockerd's OCI runtimes that start a privileged container with every capability dockerd knows,
#: as it asks (a configured wrapper may instead trim them to what the host allows).
PLAIN_OCI_RUNTIMES = ("runc", "io.containerd.runc.v2", "crun")


class DockerRuntime(ContainerRuntime):
    """Runs actions as docker containers; opened by the core with the resolved settings.

    ``settings.options["docker_host"]`` is the daemon URL (``None``: the local socket). Opening
    it checks that the daemon answers (:class:`~tinklet_core.errors.RuntimeUnavailable`
    otherwise) and, when ``settings.agent_id`` is set, removes the containers a crashed earlier
    run left for that agent.
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        from tinklet_docker.engine import DEFAULT_URL, DockerEngine

        engine = DockerEngine(settings.options.get("docker_host") or DEFAULT_URL)
        self._docker = engine
        try:
            super().__init__(settings, engine, log)
        except BaseException:
            engine.close()
            raise
        self.engine_sees_host_files = engine.url.startswith("unix://")  # tcp:// may be remote
        self._warn_about_daemon_proxy(engine)

    def ungrantable_capabilities(self) -> tuple[str, ...]:
        """Those missing from dockerd's bounding set (its socket's peer; tinklet's own when it
        cannot be looked at) when the daemon's default runtime (``docker info``) is a plain OCI
        runtime, which refuses them; none with another (a wrapper such as the test hosts'
        ``hostcaps``) or when the daemon does not say."""
        url = self._docker.url
        daemon = peer_missing_capabilities(url.removeprefix("unix://")) if url.startswith("unix://") else None
        missing = super().ungrantable_capabilities() if daemon is None else daemon
        if not missing:
            return ()
        try:
            runtime = self._docker.api.info().get("DefaultRuntime")
        except Exception as exc:  # only a warning is at stake
            log.debug("could not read the Docker daemon's default runtime: %s", exc)
            return ()
        return missing if runtime in PLAIN_OCI_RUNTIMES else ()

    def _warn_about_daemon_proxy(self, engine: DockerEngine) -> None:
        """dockerd pulls with its own proxy settings: warn once when tinklet's differ."""
        if not self.settings.proxy.values():
            return
        try:
            info = engine.api.info()
        except Exception as exc:  # only a warning is at stake
            log.debug("could not read the Docker daemon's proxy settings: %s", exc)
            return
        warning = differences_warning(daemon_differences(self.settings.proxy, info))
        if warning:
            log.warning(warning)
