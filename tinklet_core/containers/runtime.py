"""Action execution for every OCI-style engine, written once.

:class:`ContainerRuntime` runs an action on any :class:`~tinklet_core.containers.engine.ContainerEngine`:
pull per the policy with the registry's credentials (bounded by the deadline and shutdown),
create the container from :func:`~tinklet_core.containers.spec.container_spec`, attach to its
output *before* starting it (so no line is missed), start it, and let a helper thread feed the
output frames to :class:`~tinklet_core.containers.output.OutputLines` and then wait for the exit
code while the calling thread watches the deadline and shutdown. It kills at the deadline
(TIMEOUT) or on shutdown (:class:`~tinklet_core.errors.ActionInterrupted`), always removes the
container, and on opening removes what a crashed run of the same agent left.

An engine plugin subclasses it, passing its engine, and overrides only its quirks:
:meth:`ContainerRuntime.resolve_image`, :meth:`ContainerRuntime.pull_refused`,
:meth:`ContainerRuntime.create_and_start`, :meth:`ContainerRuntime.after_exit` and
:meth:`ContainerRuntime.close`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from pathlib import Path

from tinklet_core.action_failure import failure_directory, with_action_failure
from tinklet_core.containers.engine import ContainerEngine, EngineFailure, OutputStream
from tinklet_core.containers.output import OutputLines
from tinklet_core.containers.spec import Ulimit, container_spec
from tinklet_core.errors import ActionInterrupted
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State
from tinklet_core.runtime import ActionContext, PullPolicy, RuntimeSettings, WaitResult, wait_for_exit
from tinklet_core.runtime_helpers import Background, exit_outcome, pull_within_deadline

#: After a kill, how long the output stream and the wait may take to end.
STOP_GRACE_SECONDS = 10.0


class ContainerRuntime:
    """Runs actions as containers on ``engine``; ``log`` is the plugin's logger.

    Opening it (with ``settings.agent_id`` set) removes the containers an earlier run of that
    agent left behind (they carry its ``tinklet.agent`` label).
    """

    def __init__(self, settings: RuntimeSettings, engine: ContainerEngine, log: logging.Logger) -> None:
        self.settings = settings
        self.engine = engine
        self.log = log
        #: Explicit resource limits for every container (empty: the engine's defaults).
        self.ulimits: tuple[Ulimit, ...] = ()
        #: False when the engine may run on another host, where a local directory cannot be
        #: bind-mounted: actions then get no ``/tinkerbell`` (see :mod:`tinklet_core.action_failure`).
        self.engine_sees_host_files = True
        if settings.agent_id:
            self._remove_leftovers(settings.agent_id)

    def _remove_leftovers(self, agent_id: str) -> None:
        try:
            for name in self.engine.containers(agent_id):
                self.engine.remove(name)
                self.log.info("removed container %s left by an earlier run for agent %s", name, agent_id)
        except EngineFailure as exc:
            self.log.warning("could not remove leftover containers of agent %s: %s", agent_id, exc)

    def leftovers(self) -> list[str]:
        """Names of tinklet's containers on the engine for this runtime's agent (all agents'
        when it has none). Empty whenever no action is running."""
        return self.engine.containers(self.settings.agent_id or None)

    def close(self) -> None:
        """Close the engine connection."""
        self.engine.close()

    # What an engine plugin may override.

    def resolve_image(self, image: str) -> str:
        """The reference the engine runs for the action image ``image`` (as given by default)."""
        return image

    def pull_refused(self, image: str) -> str | None:
        """Why ``image`` can never be pulled (it is local to this engine), or ``None``."""
        return None

    def after_exit(self, context: ActionContext, container: str, lines: OutputLines) -> None:
        """Called once the container exited and its live output ended (nothing by default)."""

    def create_and_start(
        self, context: ActionContext, image: str, failure_dir: Path | None = None
    ) -> tuple[str, OutputStream]:
        """Create the container (``failure_dir`` mounted at ``/tinkerbell``), attach to its
        output and start it; removed again on failure."""
        settings = context.settings
        spec = container_spec(
            context.action,
            image,
            settings.privilege,
            secrets.token_hex(3),
            self.ulimits,
            failure_dir=failure_dir,
            proxy=settings.proxy,
        )
        container = self.engine.create(spec)
        output: OutputStream | None = None
        try:
            output = self.engine.attach(container)
            self.engine.start(container)
        except EngineFailure:
            if output is not None:
                output.close()
            self._remove(context, container)
            raise
        return container, output

    # Action execution.

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        """Pull the image if the policy says so, run the container, stream its output, report."""
        try:
            image = self.resolve_image(context.action.image)
            return self._pull(context, image) or self._run(context, image)
        except EngineFailure as exc:
            return Outcome(State.FAILED, reason=str(exc))

    def _pull(self, context: ActionContext, image: str) -> Outcome | None:
        """``None`` when the image is ready, else the action's outcome (failed pull, timeout)."""
        policy = context.settings.pull_policy
        refused = self.pull_refused(image)
        if (policy is not PullPolicy.ALWAYS or refused) and self.engine.image_present(image):
            return None
        if refused:
            return Outcome(State.FAILED, reason=f"image {image} is not present ({refused})")
        if policy is PullPolicy.NEVER:
            return Outcome(State.FAILED, reason=f"image {image} not present and pull policy is never")
        credentials = context.registry_credentials(image)
        return pull_within_deadline(context, image, lambda: self.engine.pull(image, credentials))

    def _run(self, context: ActionContext, image: str) -> Outcome:
        local = self.engine_sees_host_files
        with failure_directory() if local else contextlib.nullcontext() as failure_dir:
            container, output = self.create_and_start(context, image, failure_dir)
            try:
                outcome = self._watch(context, container, output)
            finally:
                output.close()
                self._remove(context, container)
            return with_action_failure(outcome, failure_dir) if failure_dir else outcome

    def _remove(self, context: ActionContext, container: str) -> None:
        try:
            self.engine.remove(container)
        except EngineFailure as exc:
            context.log.warning("could not remove container %s: %s", container[:12], exc)

    def _watch(self, context: ActionContext, container: str, output: OutputStream) -> Outcome:
        lines = OutputLines(context.write_output)
        watcher = Background(
            lambda: self._stream_then_wait(container, output, lines), name=f"watch {container[:12]}"
        )
        waited = wait_for_exit(watcher.done, context)
        if waited is WaitResult.EXITED:
            code = watcher.result()
            self.after_exit(context, container, lines)
            return exit_outcome(code, lambda: self.engine.oom_killed(container))
        self._kill(context, container, waited)
        if not watcher.join(STOP_GRACE_SECONDS):
            output.close()
        if waited is WaitResult.CANCELLED:
            raise ActionInterrupted(f"{context.action.label}: stopped because tinklet is shutting down")
        return Outcome(State.TIMEOUT, reason=f"timed out after {context.action.timeout}s")

    def _stream_then_wait(self, container: str, output: OutputStream, lines: OutputLines) -> int:
        """Feed the output frames to ``lines`` until the stream ends; then the exit code.

        A broken stream is only logged (``lines.broken`` tells :meth:`after_exit`): the wait
        still gives the exit code.
        """
        try:
            lines.feed_all(output)
        except Exception as exc:  # a broken connection must not lose the exit code
            lines.broken = True
            self.log.warning("output stream of container %s broke: %s", container[:12], exc)
        return self.engine.wait(container)

    def _kill(self, context: ActionContext, container: str, why: WaitResult) -> None:
        """Kill the container at the deadline or on shutdown. On shutdown a failed kill is only
        logged (the container is removed next anyway); at a deadline it fails the action."""
        try:
            self.engine.kill(container)
        except EngineFailure as exc:
            if why is not WaitResult.CANCELLED:
                raise
            context.log.warning("could not kill container %s: %s", container[:12], exc)
