"""Action execution for every OCI-style engine, written once.

:class:`ContainerRuntime` runs an action on any :class:`~tinklet_core.containers.engine.ContainerEngine`:
pull per the policy with the registry's credentials (bounded by the deadline and shutdown),
create the container from :func:`~tinklet_core.containers.spec.container_spec`, attach to its
output *before* starting it (so no line is missed), start it, and let a helper thread feed the
output frames to :class:`~tinklet_core.containers.output.OutputLines` and then wait for the exit
code while the calling thread watches the deadline and shutdown. It kills at the deadline
(TIMEOUT) or on shutdown (:class:`~tinklet_core.errors.ActionInterrupted`), always removes the
container, and on opening removes what a crashed run of the same agent left.

The engine may go away and come back (a restarted dockerd, a Podman service that died): an
engine call that finds it unreachable (:class:`~tinklet_core.containers.engine.EngineUnreachable`)
is not the action's failure. Before the container exists, the runtime waits for the engine
(:func:`~tinklet_core.containers.outage.await_engine`) and then runs the action; once it
runs, the runtime waits for the engine, finds the container again and reports its real exit
code and output (read from the container's stored log), or FAILED "engine lost the container"
when the engine no longer knows it. All of it within the action's deadline and shutdown.
A container that could not be removed while the engine was away is removed before the next
action starts.

An engine plugin subclasses it, passing its engine, and overrides only its quirks:
:meth:`ContainerRuntime.resolve_image`, :meth:`ContainerRuntime.pull_refused`,
:meth:`ContainerRuntime.create_and_start`, :meth:`ContainerRuntime.revive_engine`,
:meth:`ContainerRuntime.keep_container`, :meth:`ContainerRuntime.ungrantable_capabilities` and
:meth:`ContainerRuntime.close`.

A host that cannot grant what ``--action-privilege`` asks for is named at both ends (see
:mod:`tinklet_core.containers.privilege`): opening the runtime warns once when the engine cannot
grant what ``privileged`` asks for, and an action whose container the host refused fails with
the way out (``--action-privilege all-caps`` / ``none``) in its report and in the log.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from pathlib import Path

from tinklet_core.action_failure import failure_directory, numeric_owner, with_action_failure
from tinklet_core.containers.capabilities import missing_capabilities
from tinklet_core.containers.engine import (
    ContainerEngine,
    ContainerGone,
    EngineFailure,
    EngineUnreachable,
    OutputStream,
    PrivilegeRefused,
    PullFailure,
)
from tinklet_core.containers.outage import await_engine
from tinklet_core.containers.output import OutputLines
from tinklet_core.containers.privilege import refusal_reason, startup_warning
from tinklet_core.containers.spec import Ulimit, container_spec
from tinklet_core.errors import ActionInterrupted
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State
from tinklet_core.pull_failure import pull_failure_message
from tinklet_core.pull_stream import PullStreamProgress
from tinklet_core.runtime import ActionContext, PullPolicy, RuntimeSettings, WaitResult, wait_for_exit
from tinklet_core.runtime_helpers import Background, exit_outcome, pull_within_deadline

#: After a kill, how long the output stream and the wait may take to end.
STOP_GRACE_SECONDS = 10.0


class ContainerRuntime:
    """Runs actions as containers on ``engine``; ``log`` is the plugin's logger.

    Opening it (with ``settings.agent_id`` set) removes the containers an earlier run of that
    agent left behind (they carry its ``tinklet.agent`` label); only those that stopped when
    ``settings.shared_agent`` says another process may be running as the same agent.
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
        #: Containers whose removal failed while the engine was away; removed before the next action.
        self._unremoved: set[str] = set()
        if settings.agent_id:
            self._remove_leftovers(settings.agent_id)
        self.warn_about_privilege()

    def warn_about_privilege(self) -> None:
        """Log once, as a warning, when the engine cannot grant what ``privileged`` asks for
        (see :meth:`ungrantable_capabilities`). Called once, when the runtime opens."""
        warning = startup_warning(self.settings.privilege, self.ungrantable_capabilities())
        if warning:
            self.log.warning(warning)

    def _remove_leftovers(self, agent_id: str) -> None:
        try:
            for name in self.engine.containers(agent_id):
                if self.settings.shared_agent and self._still_running(name):
                    self.log.info(
                        "left container %s of agent %s alone: it still runs, perhaps for another "
                        "tinklet run on this host", name, agent_id,
                    )  # fmt: skip
                    continue
                self.engine.remove(name)
                self.log.info("removed container %s left by an earlier run for agent %s", name, agent_id)
        except EngineFailure as exc:
            self.log.warning("could not remove leftover containers of agent %s: %s", agent_id, exc)

    def _still_running(self, container: str) -> bool:
        try:
            return self.engine.exit_code(container) is None
        except ContainerGone:  # its own run removed it meanwhile
            return True

    def leftovers(self) -> list[str]:
        """Names of tinklet's containers on the engine for this runtime's agent (all agents'
        when it has none). Empty whenever no action is running."""
        return self.engine.containers(self.settings.agent_id or None)

    def close(self) -> None:
        """Remove what could not be removed while the engine was away, close the connection."""
        self.remove_pending(self.log)
        self.engine.close()

    def remove_pending(self, log: logging.Logger) -> None:
        """Remove the containers earlier removals left while the engine was away (kept for the
        next try when the engine is still away)."""
        for container in sorted(self._unremoved):
            self._remove(log, container)

    # What an engine plugin may override.

    def resolve_image(self, image: str) -> str:
        """The reference the engine runs for the action image ``image`` (as given by default)."""
        return image

    def pull_refused(self, image: str) -> str | None:
        """Why ``image`` can never be pulled (it is local to this engine), or ``None``."""
        return None

    def revive_engine(self) -> None:
        """Called while waiting for an unreachable engine, before each ping: bring it back if
        this plugin can (nothing by default; Podman restarts the service it started)."""

    def ungrantable_capabilities(self) -> tuple[str, ...]:
        """Capabilities (names without ``CAP_``) a privileged container asks the engine for that
        the host cannot grant, so that it would be refused. By default those missing from the
        bounding set (``CapBnd`` of ``/proc/self/status``: the engine runs on the same kernel);
        an engine that trims privileged containers to what the host allows, or that runs them
        through a runtime that does, returns fewer."""
        return missing_capabilities()

    def keep_container(self, outcome: Outcome) -> bool:
        """True to leave the container of an action that ended with ``outcome`` (not removed
        by default; an action stopped by shutdown is always removed)."""
        return False

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
            self._remove(context.log, container)
            raise
        return container, output

    # Action execution.

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        """Pull the image if the policy says so, run the container, stream its output, report.

        While the engine is unreachable before the container exists, wait for it (within the
        deadline) and start over; nothing is created once tinklet is shutting down.
        """
        try:
            while True:
                try:
                    return self._attempt(context)
                except EngineUnreachable as lost:
                    waited = self._await_engine(context, lost)
                    if waited is WaitResult.CANCELLED:
                        stopped = f"{context.action.label}: stopped while the engine was away"
                        raise ActionInterrupted(stopped) from None
                    if waited is WaitResult.TIMED_OUT:
                        reason = f"timed out after {context.action.timeout}s waiting for the engine ({lost})"
                        return Outcome(State.TIMEOUT, reason=reason)
        except PrivilegeRefused as exc:
            return Outcome(State.FAILED, reason=refusal_reason(str(exc), context.settings.privilege))
        except EngineFailure as exc:
            return Outcome(State.FAILED, reason=str(exc))

    def _await_engine(self, context: ActionContext, lost: EngineUnreachable) -> WaitResult:
        # self.engine is looked up at every ping: revive_engine may replace it.
        return await_engine(context, lost, lambda: self.engine.ping(), self.revive_engine, self.log)

    def _attempt(self, context: ActionContext) -> Outcome:
        self.remove_pending(context.log)
        image = self.resolve_image(context.action.image)
        return self._pull(context, image) or self._run(context, image)

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
        progress = PullStreamProgress(image, context.pull_progress)
        try:
            return pull_within_deadline(
                context, image, lambda: self.engine.pull(image, credentials, progress.feed)
            )
        except PullFailure as exc:
            return Outcome(State.FAILED, reason=pull_failure_message(image, exc.reason, credentials))

    def _run(self, context: ActionContext, image: str) -> Outcome:
        if context.cancelled.is_set():  # nothing is created once tinklet is stopping
            raise ActionInterrupted(f"{context.action.label}: stopped before its container was created")
        local = self.engine_sees_host_files
        state_dir = context.settings.state_dir
        owner = numeric_owner(self.engine.image_user(image)) if local else None
        with failure_directory(state_dir, owner) if local else contextlib.nullcontext() as failure_dir:
            container, output = self.create_and_start(context, image, failure_dir)
            outcome: Outcome | None = None
            try:
                outcome = self._watch(context, container, output)
            except EngineUnreachable as exc:  # the container ran: never start the action again
                raise EngineFailure(str(exc)) from None
            finally:
                output.close()
                if outcome is not None and self.keep_container(outcome):
                    context.log.info("kept container %s of the failed action", container)
                else:
                    self._remove(context.log, container)
            return with_action_failure(outcome, failure_dir) if failure_dir else outcome

    def _remove(self, log: logging.Logger, container: str) -> None:
        try:
            self.engine.remove(container)
        except EngineUnreachable as exc:
            self._unremoved.add(container)
            log.warning("could not remove container %s yet: %s", container[:12], exc)
        except EngineFailure as exc:
            log.warning("could not remove container %s: %s", container[:12], exc)
        else:
            self._unremoved.discard(container)

    def _watch(self, context: ActionContext, container: str, output: OutputStream) -> Outcome:
        lines = OutputLines(context.write_output)
        watcher: Background[int] = Background(
            lambda: self._stream_then_wait(container, output, lines), name=f"watch {container[:12]}"
        )
        while True:
            waited = wait_for_exit(watcher.done, context)
            if waited is not WaitResult.EXITED:
                break
            code: int | None
            try:
                code = watcher.result()
            except EngineUnreachable as lost:
                lines.broken = True
                waited, code = self._ride_out(context, container, lost)
                if waited is not WaitResult.EXITED:
                    break
            if code is None:  # still running after an outage: wait again (output is read after exit)
                watcher = Background(lambda: self.engine.wait(container), name=f"wait {container[:12]}")
                continue
            self._catch_up(context, container, lines)
            return exit_outcome(code, lambda: self.engine.oom_killed(container))
        self._kill(context, container, waited)
        if not watcher.join(STOP_GRACE_SECONDS):
            output.close()
        if waited is WaitResult.CANCELLED:
            raise ActionInterrupted(f"{context.action.label}: stopped because tinklet is shutting down")
        return Outcome(State.TIMEOUT, reason=f"timed out after {context.action.timeout}s")

    def _ride_out(
        self, context: ActionContext, container: str, lost: EngineUnreachable
    ) -> tuple[WaitResult, int | None]:
        """Wait for the engine to come back, then ask it for the container's exit code (``None``
        while it runs); an engine that goes away again is waited for again."""
        while True:
            waited = self._await_engine(context, lost)
            if waited is not WaitResult.EXITED:
                return waited, None
            try:
                return waited, self._exit_code_after_outage(container)
            except EngineUnreachable as again:
                lost = again

    def _exit_code_after_outage(self, container: str) -> int | None:
        """The container's exit code once the engine is back, ``None`` while it still runs;
        :class:`EngineFailure` "engine lost the container" when the engine does not know it."""
        try:
            return self.engine.exit_code(container)
        except ContainerGone:
            raise EngineFailure(f"engine lost the container {container[:12]} while it was away") from None

    def _catch_up(self, context: ActionContext, container: str, lines: OutputLines) -> None:
        """When the live stream broke, emit what it missed from the container's stored log."""
        if not lines.broken:
            return
        try:
            stored = self.engine.logs(container)
            try:
                missed = lines.catch_up(stored)
            finally:
                stored.close()
        except Exception as exc:  # the outcome stands without the log
            context.log.warning("could not read the log of container %s: %s", container[:12], exc)
            return
        if missed:
            context.log.warning(
                "%d output lines the live stream missed were read from the container log", missed
            )

    def _stream_then_wait(self, container: str, output: OutputStream, lines: OutputLines) -> int:
        """Feed the output frames to ``lines`` until the stream ends; then the exit code.

        The wait is asked for at once, in a thread of its own, not after the stream ended: an
        engine answers it only once it has processed the exit (Docker closes the stream before
        it marks the container stopped), and asking late would add that time to every action.
        The exit code is still returned only after the last frame was handed on.

        A broken stream is only logged (``lines.broken`` has :meth:`_catch_up` read the stored
        log after exit): the wait still gives the exit code.
        """
        exited: Background[int] = Background(lambda: self.engine.wait(container), f"wait {container[:12]}")
        try:
            lines.feed_all(output)
        except Exception as exc:  # a broken connection must not lose the exit code
            lines.broken = True
            self.log.warning("output stream of container %s broke: %s", container[:12], exc)
        exited.join()
        return exited.result()

    def _kill(self, context: ActionContext, container: str, why: WaitResult) -> None:
        """Kill the container at the deadline or on shutdown. On shutdown, or with the engine
        away, a failed kill is only logged (the container is removed next, or once the engine is
        back); at a deadline any other failure fails the action."""
        try:
            self._kill_reviving(container)
        except EngineUnreachable as exc:
            context.log.warning("could not kill container %s: %s", container[:12], exc)
        except EngineFailure as exc:
            if why is not WaitResult.CANCELLED:
                raise
            context.log.warning("could not kill container %s: %s", container[:12], exc)

    def _kill_reviving(self, container: str) -> None:
        """Kill the container; when the engine is away, bring it back if this plugin can
        (:meth:`revive_engine`) and try once more. The output may still be flowing then (Podman's
        comes from conmon, which outlives its service), and the container must not outlive its
        deadline."""
        try:
            self.engine.kill(container)
        except EngineUnreachable:
            self.revive_engine()
            self.engine.kill(container)
