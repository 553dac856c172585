"""The docker runtime: each action runs as one container on a Docker daemon.

This module imports only the standard library and tinklet_core, so the plugin's entry-point
module can name :class:`DockerRuntime` as its factory at no cost; docker-py is imported (through
:mod:`tinklet_docker.engine`) when a :class:`DockerRuntime` is constructed, that is only when
``--runtime docker`` was chosen.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from tinklet_core.errors import ActionInterrupted
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State
from tinklet_core.runtime import (
    ActionContext,
    LineSplitter,
    PullPolicy,
    RuntimeSettings,
    WaitResult,
    wait_for_exit,
)
from tinklet_core.runtime_helpers import Background, exit_outcome, pull_within_deadline
from tinklet_docker.errors import DockerFailure
from tinklet_docker.spec import container_spec

if TYPE_CHECKING:
    from collections.abc import Callable

    from tinklet_docker.engine import DockerEngine, OutputStream

log = logging.getLogger("tinklet.docker")

# After a kill, how long the output stream and wait may take to end before we stop waiting.
STOP_GRACE_SECONDS = 10.0


class DockerRuntime:
    """Runs actions as docker containers; opened by the core with the resolved settings.

    ``settings.options["docker_host"]`` is the daemon URL (``None``: the local socket). Opening
    it checks that the daemon answers (:class:`~tinklet_core.errors.RuntimeUnavailable`
    otherwise) and, when ``settings.agent_id`` is set, removes the containers a crashed earlier
    run left for that agent (they carry its ``tinklet.agent`` label).
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        from tinklet_docker.engine import DEFAULT_URL, DockerEngine

        self.settings = settings
        self.engine: DockerEngine = DockerEngine(settings.options.get("docker_host") or DEFAULT_URL)
        if settings.agent_id:
            self._remove_leftovers(settings.agent_id)

    def _remove_leftovers(self, agent_id: str) -> None:
        try:
            for name in self.engine.containers(agent_id):
                self.engine.remove(name)
                log.info("removed container %s left by an earlier run for agent %s", name, agent_id)
        except DockerFailure as exc:
            log.warning("could not remove leftover containers of agent %s: %s", agent_id, exc)

    def leftovers(self) -> list[str]:
        """Names of the tinklet containers on the daemon for this runtime's agent (all agents'
        when it has no agent id). Empty whenever no action is running."""
        return self.engine.containers(self.settings.agent_id or None)

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        """Pull the image if the policy says so, run the container, stream its output, report."""
        try:
            return self._pull(context) or self._run(context)
        except DockerFailure as exc:
            return Outcome(State.FAILED, reason=str(exc))

    def _pull(self, context: ActionContext) -> Outcome | None:
        """``None`` when the image is ready, else the action's outcome (failed pull, timeout)."""
        image = context.action.image
        policy = context.settings.pull_policy
        if policy is not PullPolicy.ALWAYS and self.engine.image_present(image):
            return None
        if policy is PullPolicy.NEVER:
            return Outcome(State.FAILED, reason=f"image {image} not present and pull policy is never")
        credentials = context.registry_credentials(image)
        return pull_within_deadline(context, image, lambda: self.engine.pull(image, credentials))

    def _run(self, context: ActionContext) -> Outcome:
        spec = container_spec(context.action, context.settings.privilege, secrets.token_hex(3))
        container = self.engine.create(spec)
        try:
            return self._start_and_wait(context, container)
        finally:
            try:
                self.engine.remove(container)
            except DockerFailure as exc:
                context.log.warning("could not remove container %s: %s", spec.name, exc)

    def _start_and_wait(self, context: ActionContext, container: str) -> Outcome:
        output = self.engine.attach(container)
        try:
            self.engine.start(container)
        except DockerFailure:
            output.close()
            raise
        watcher = Background(
            lambda: self._stream_then_wait(output, container, context.output), name=f"watch {container[:12]}"
        )
        waited = wait_for_exit(watcher.done, context)
        if waited is WaitResult.EXITED:
            return exit_outcome(watcher.result(), lambda: self.engine.oom_killed(container))
        self._stop(context, container, waited)
        if not watcher.join(STOP_GRACE_SECONDS):
            output.close()
        if waited is WaitResult.CANCELLED:
            raise ActionInterrupted(f"{context.action.label}: stopped because tinklet is shutting down")
        return Outcome(State.TIMEOUT, reason=f"timed out after {context.action.timeout}s")

    def _stream_then_wait(self, output: OutputStream, container: str, emit: Callable[[str], None]) -> int:
        """Feed every output chunk to a line splitter until the container exits; its exit code."""
        lines = LineSplitter(emit)
        try:
            for chunk in output:
                lines.feed(chunk)
        finally:
            output.close()
        lines.close()
        return self.engine.wait(container)

    def _stop(self, context: ActionContext, container: str, why: WaitResult) -> None:
        """Kill the container at the deadline or on shutdown. On shutdown a failed kill is only
        logged (the container is removed next anyway); at a deadline it fails the action."""
        try:
            self.engine.kill(container)
        except DockerFailure as exc:
            if why is not WaitResult.CANCELLED:
                raise
            context.log.warning("could not kill container %s: %s", container[:12], exc)

    def close(self) -> None:
        """Close the connections to the daemon."""
        self.engine.close()
