"""The podman runtime: each action runs as one container on a Podman service.

This module imports only the standard library, tinklet_core and podman-free parts of this
plugin, so the entry-point module can name :class:`PodmanRuntime` as its factory at no cost;
podman-py is imported (through :mod:`tinklet_podman.connect`) when a :class:`PodmanRuntime` is
constructed, that is only when ``--runtime podman`` was chosen.

How an action runs: resolve the image name (:mod:`tinklet_podman.images`), pull it per the pull
policy, create the container, attach to its output *before* starting it, start it, and let a
helper thread feed the attached frames into line splitters and then wait for the exit code,
while the calling thread watches the deadline and shutdown. After a normal exit the complete
log is read once more and any line the live stream missed is emitted (see
:mod:`tinklet_podman.output`). The container is always removed.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from tinklet_core.errors import ActionInterrupted
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State
from tinklet_core.runtime import ActionContext, PullPolicy, RuntimeSettings, WaitResult, wait_for_exit
from tinklet_core.runtime_helpers import Background, exit_outcome, pull_within_deadline
from tinklet_podman.errors import PodmanFailure
from tinklet_podman.images import is_local_only, resolve_image
from tinklet_podman.output import OutputLines
from tinklet_podman.spec import Ulimit, container_spec
from tinklet_podman.ulimits import fallback_limits, is_rlimit_error

if TYPE_CHECKING:
    from tinklet_podman.connect import Connection
    from tinklet_podman.engine import FrameStream, PodmanEngine

log = logging.getLogger("tinklet.podman")

#: After a kill, how long the output stream and the wait may take to end.
STOP_GRACE_SECONDS = 10.0


class PodmanRuntime:
    """Runs actions as Podman containers; opened by the core with the resolved settings.

    Options (``settings.options``): ``podman_socket`` (a socket path or URL that must answer),
    ``xdg_runtime_dir`` (where a user's Podman socket lives), ``podman_binary`` (the ``podman``
    to start a private service with when no socket answers). Opening it fails with
    :class:`~tinklet_core.errors.RuntimeUnavailable` when no Podman can be reached or started,
    and, when ``settings.agent_id`` is set, removes the containers an earlier run of that agent
    left behind (they carry its ``tinklet.agent`` label).
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        from tinklet_podman.connect import connect

        self.settings = settings
        self._ulimits: tuple[Ulimit, ...] = ()  # explicit limits, once Podman's defaults failed
        self._connection: Connection | None = connect(settings.options)
        try:
            if settings.agent_id:
                self._remove_leftovers(settings.agent_id)
        except BaseException:
            self.close()
            raise

    @property
    def engine(self) -> PodmanEngine:
        """The engine of the service in use (only while the runtime is open)."""
        if self._connection is None:
            raise RuntimeError("the podman runtime is closed")
        return self._connection.engine

    @property
    def url(self) -> str:
        """The URL of the Podman service in use."""
        return self.engine.url

    @property
    def service_pid(self) -> int | None:
        """The pid of the ``podman system service`` tinklet started, ``None`` if it found one."""
        service = self._connection.service if self._connection else None
        return service.pid if service else None

    def _remove_leftovers(self, agent_id: str) -> None:
        try:
            for name in self.engine.containers(agent_id):
                self.engine.remove(name)
                log.info("removed container %s left by an earlier run for agent %s", name, agent_id)
        except PodmanFailure as exc:
            log.warning("could not remove leftover containers of agent %s: %s", agent_id, exc)

    def leftovers(self) -> list[str]:
        """Names of tinklet's containers on this service (carrying ``tinklet.action``), for this
        runtime's agent or all agents' when it has none. Empty whenever no action is running."""
        return self.engine.containers(self.settings.agent_id or None)

    def close(self) -> None:
        """Close the connection and stop the service tinklet started, if any. Idempotent."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.engine.close()
        finally:
            if connection.service is not None:
                connection.service.stop()
                log.info("stopped the podman system service tinklet started (pid %d)", connection.service.pid)

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        """Pull the image if the policy says so, run the container, stream its output, report."""
        try:
            image = resolve_image(context.action.image, self.engine.image_exists)
            return self._pull(context, image) or self._run(context, image)
        except PodmanFailure as exc:
            return Outcome(State.FAILED, reason=str(exc))

    def _pull(self, context: ActionContext, image: str) -> Outcome | None:
        """``None`` when the image is ready, else the action's outcome (failed pull, timeout)."""
        policy = context.settings.pull_policy
        present = self.engine.image_exists(image)
        if present and (policy is not PullPolicy.ALWAYS or is_local_only(image)):
            return None
        if is_local_only(image):
            reason = f"image {image} is not present (localhost/ images are never pulled)"
            return Outcome(State.FAILED, reason=reason)
        if policy is PullPolicy.NEVER:
            return Outcome(State.FAILED, reason=f"image {image} is not present and the pull policy is never")
        credentials = context.registry_credentials(image)
        return pull_within_deadline(context, image, lambda: self.engine.pull(image, credentials))

    def _run(self, context: ActionContext, image: str) -> Outcome:
        container, output = self._create_and_start(context, image)
        try:
            return self._watch(context, container, output)
        finally:
            output.close()
            try:
                self.engine.remove(container)
            except PodmanFailure as exc:
                context.log.warning("could not remove container %s: %s", container[:12], exc)

    def _create_and_start(self, context: ActionContext, image: str) -> tuple[str, FrameStream]:
        """Create, attach and start the container; retried once with explicit ulimits when the
        host refuses Podman's default ones (see :mod:`tinklet_podman.ulimits`)."""
        while True:
            spec = container_spec(
                context.action, image, context.settings.privilege, secrets.token_hex(3), self._ulimits
            )
            container = self.engine.create(spec)
            output: FrameStream | None = None
            try:
                output = self.engine.attach(container)
                self.engine.start(container)
                return container, output
            except PodmanFailure as exc:
                if output is not None:
                    output.close()
                try:
                    self.engine.remove(container)
                except PodmanFailure as removal:
                    context.log.warning("could not remove container %s: %s", container[:12], removal)
                if self._ulimits or not is_rlimit_error(str(exc)):
                    raise
                self._ulimits = fallback_limits(self.service_pid)
                log.warning(
                    "Podman's default ulimits cannot be applied here (%s); running containers with %s. "
                    "Set default_ulimits = [] in containers.conf to silence this.",
                    exc,
                    ", ".join(f"{u.name}={u.soft}:{u.hard}" for u in self._ulimits),
                )

    def _watch(self, context: ActionContext, container: str, output: FrameStream) -> Outcome:
        lines = OutputLines(context.output)
        watcher = Background(
            lambda: self._stream_then_wait(container, output, lines), name=f"watch {container[:12]}"
        )
        waited = wait_for_exit(watcher.done, context)
        if waited is WaitResult.EXITED:
            code = watcher.result()
            self._emit_missed_lines(context, container, lines)
            return exit_outcome(code, lambda: self.engine.oom_killed(container))
        self._kill(context, container, waited)
        if not watcher.join(STOP_GRACE_SECONDS):
            output.close()
        if waited is WaitResult.CANCELLED:
            raise ActionInterrupted(f"{context.action.label}: stopped because tinklet is shutting down")
        return Outcome(State.TIMEOUT, reason=f"timed out after {context.action.timeout}s")

    def _stream_then_wait(self, container: str, output: FrameStream, lines: OutputLines) -> int:
        """Feed the attached frames to the line splitters until the stream ends; the exit code.

        A broken stream is only logged: the wait still gives the exit code and the complete log
        delivers the missing lines afterwards.
        """
        try:
            lines.feed_all(output)
        except Exception as exc:  # a broken connection must not lose the exit code
            log.warning("output stream of container %s broke: %s", container[:12], exc)
        return self.engine.wait(container)

    def _emit_missed_lines(self, context: ActionContext, container: str, lines: OutputLines) -> None:
        """Read the complete log of the exited container and emit what the live stream missed."""
        try:
            log_stream = self.engine.logs(container)
            try:
                missed = lines.catch_up(log_stream)
            finally:
                log_stream.close()
        except Exception as exc:  # the outcome stands without the log
            context.log.warning("could not read the log of container %s: %s", container[:12], exc)
            return
        if missed:
            context.log.warning(
                "%d output lines the live stream missed were read from the container log", missed
            )

    def _kill(self, context: ActionContext, container: str, why: WaitResult) -> None:
        """Kill the container at the deadline or on shutdown. On shutdown a failed kill is only
        logged (the container is removed next anyway); at a deadline it fails the action."""
        try:
            self.engine.kill(container)
        except PodmanFailure as exc:
            if why is not WaitResult.CANCELLED:
                raise
            context.log.warning("could not kill container %s: %s", container[:12], exc)

