"""The podman runtime: the core's shared container runtime on a Podman service, with Podman's quirks.

This module imports only the standard library, tinklet_core and podman-free parts of this
plugin, so the entry-point module can name :class:`PodmanRuntime` as its factory at no cost;
podman-py is imported (through :mod:`tinklet_podman.connect`) when a :class:`PodmanRuntime` is
constructed, that is only when ``--runtime podman`` was chosen.

Action execution is :class:`~tinklet_core.containers.runtime.ContainerRuntime`'s; this class
adds only what is Podman's own: the service it reaches or starts, image-name resolution
(:mod:`tinklet_podman.images`, ``localhost/`` images never pulled), the retry with explicit
ulimits (:mod:`tinklet_podman.ulimits`), and restarting the service it started when it dies.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tinklet_core.containers.engine import EngineFailure, OutputStream
from tinklet_core.containers.runtime import ContainerRuntime
from tinklet_core.runtime import ActionContext, RuntimeSettings
from tinklet_podman.images import is_local_only, resolve_image
from tinklet_podman.ulimits import fallback_limits, is_rlimit_error

if TYPE_CHECKING:
    from tinklet_podman.connect import Connection
    from tinklet_podman.engine import PodmanEngine

log = logging.getLogger("tinklet.podman")

#: How long a process that may be dying gets to finish before it counts as alive.
DYING_GRACE = 0.1


def exit_status(process: subprocess.Popen[bytes]) -> int | None:
    """The exit status of ``process``, ``None`` while it lives. A killed multi-threaded process
    (the Podman service is Go) is not reaped until its last thread ends: give it a moment."""
    try:
        return process.wait(DYING_GRACE)
    except subprocess.TimeoutExpired:
        return None


class PodmanRuntime(ContainerRuntime):
    """Runs actions as Podman containers; opened by the core with the resolved settings.

    Options (``settings.options``): ``podman_socket`` (a socket path or URL that must answer),
    ``xdg_runtime_dir`` (where a user's Podman socket lives), ``podman_binary`` (the ``podman``
    to start a private service with when no socket answers). Opening it fails with
    :class:`~tinklet_core.errors.RuntimeUnavailable` when no Podman can be reached or started,
    and, when ``settings.agent_id`` is set, removes the containers an earlier run of that agent
    left behind.
    """

    engine: PodmanEngine

    def __init__(self, settings: RuntimeSettings) -> None:
        from tinklet_podman.connect import connect

        self._binary = str(settings.options.get("podman_binary") or "podman")
        self._proxy = settings.proxy
        self._connection: Connection | None = connect(settings.options, settings.proxy)
        try:
            super().__init__(settings, self._connection.engine, log)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        """The URL of the Podman service in use."""
        return self.engine.url

    @property
    def service_pid(self) -> int | None:
        """The pid of the ``podman system service`` tinklet started, ``None`` if it found one."""
        service = self._connection.service if self._connection else None
        return service.pid if service else None

    def close(self) -> None:
        """Close the connection and stop the service tinklet started, if any. Idempotent."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        self.remove_pending(log)
        try:
            connection.engine.close()
        finally:
            service = connection.service
            if service is not None:
                status = exit_status(service.process)
                service.stop()
                if status is None:
                    log.info("stopped the podman system service tinklet started (pid %d)", service.pid)
                else:
                    log.warning(
                        "the podman system service tinklet started (pid %d) had already exited "
                        "(status %d): %s", service.pid, status, service.stderr_tail(),
                    )  # fmt: skip

    def revive_engine(self) -> None:
        """Restart the podman system service tinklet started when it died (supervision): a new
        service on a new private socket, with the same containers (Podman keeps them in its
        store, and a container outlives the service that started it). Called from the thread
        that runs actions, which (as the one that opened the runtime) must live as long as the
        service: see the parent-death signal in :mod:`tinklet_podman.service`."""
        from tinklet_podman.connect import restart_service

        connection = self._connection
        if connection is None or connection.service is None:
            return
        dead = connection.service
        status = exit_status(dead.process)
        if status is None:
            return
        log.warning(
            "the podman system service tinklet started (pid %d) died (status %d): %s; restarting it",
            dead.pid, status, dead.stderr_tail(),
        )  # fmt: skip
        revived = restart_service(self._binary, self._proxy)
        if revived is None:
            return  # logged; tried again at the next ping
        dead.stop()  # removes the old socket's directory; the process is gone already
        connection.engine.close()
        self._connection = revived
        self.engine = revived.engine
        log.info("podman system service %s at %s", revived.how, revived.engine.url)

    def ungrantable_capabilities(self) -> tuple[str, ...]:
        """None: Podman gives a privileged container (and ``--cap-add ALL``) the capabilities of
        its own bounding set, so it never asks the host for one it lacks (Podman 4.3)."""
        return ()

    def resolve_image(self, image: str) -> str:
        """``image`` fully qualified as Podman needs it (see :mod:`tinklet_podman.images`)."""
        return resolve_image(image, self.engine.image_present)

    def pull_refused(self, image: str) -> str | None:
        """``localhost/`` images were made here and have no registry to pull them from."""
        return "localhost/ images are never pulled" if is_local_only(image) else None

    def create_and_start(
        self, context: ActionContext, image: str, failure_dir: Path | None = None
    ) -> tuple[str, OutputStream]:
        """As the shared runtime, retried once with explicit ulimits when the host refuses
        Podman's default ones (see :mod:`tinklet_podman.ulimits`)."""
        try:
            return super().create_and_start(context, image, failure_dir)
        except EngineFailure as exc:
            if self.ulimits or not is_rlimit_error(str(exc)):
                raise
            self.ulimits = fallback_limits(self.service_pid)
            log.warning(
                "Podman's default ulimits cannot be applied here (%s); running containers with %s. "
                "Set default_ulimits = [] in containers.conf to silence this.",
                exc,
                ", ".join(f"{u.name}={u.soft}:{u.hard}" for u in self.ulimits),
            )
        return super().create_and_start(context, image, failure_dir)
