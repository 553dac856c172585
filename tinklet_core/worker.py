"""The worker loop: read an action, report RUNNING, run it, report the outcome, repeat.

The loop owns no container code: runtimes run actions through ``tinklet_execute_action``. It
never exits on a server or runtime error: it backs off with jitter, logs once per change of
state (not once per retry), and retries a final report until the server accepts it (until then
the server re-serves the same action and never moves on to the next one). On shutdown
(``stop`` set) the runtime stops the running action and no final state is reported, so the
server serves the action again to the next worker that asks; a report already in flight gets
the transport's short grace and is then abandoned, so stopping never waits on the server.

Everything the server sent (ids, image, messages, error details) is logged through
:mod:`tinklet_core.log_safe`: escaped and shortened.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import pluggy

from tinklet_core.backoff import Backoff, StatusLog
from tinklet_core.errors import ActionInterrupted, ActionRefused, MalformedAction, TransportError
from tinklet_core.log_format import ActionLogger
from tinklet_core.log_safe import loggable, short_id
from tinklet_core.model import Action, Event, Outcome, PullProgress, RegistryCredentials, State
from tinklet_core.observers import EventDispatcher
from tinklet_core.plugin_calls import (
    Origin,
    PluginCalls,
    PluginFault,
    error_line,
    plain_origin,
)
from tinklet_core.rewrites import rewrite_action
from tinklet_core.runtime import ActionContext, RuntimeSettings, WorkflowEnvironment, image_registry
from tinklet_core.runtime_helpers import one_line
from tinklet_core.transports.base import Transport

TAIL_IN_MESSAGE = 5
MAX_MESSAGE = 2000
__all__ = ["MAX_MESSAGE", "Backoff", "OutputTail", "StatusLog", "Worker", "WorkerOptions", "failure_message"]


@dataclass(frozen=True)
class WorkerOptions:
    """Tuning for the loop: backoff bounds (seconds), how many output lines to keep, and
    whether action output goes to the worker log (it is kept for failure messages anyway)."""

    min_backoff: float = 0.2
    max_backoff: float = 5.0
    tail_lines: int = 20
    log_output: bool = True


class OutputTail:
    """Receives an action's output lines: logs them and keeps the last few.

    Lines come in batches (:meth:`write_lines`) and each batch is one log record, one line of
    text per output line, each tagged ``ACTION | ``: a chatty action costs a record per batch,
    not per line, so reading its output keeps up with the engine. With ``to_log`` False the
    lines are only kept for the failure message.
    """

    def __init__(self, action: Action, log: logging.Logger, keep: int, to_log: bool = True) -> None:
        self._prefix = f"{action.label} | "
        self._separator = "\n" + self._prefix
        self._log = log
        self._to_log = to_log
        self.lines: deque[str] = deque(maxlen=keep)

    def __call__(self, line: str) -> None:
        self.write_lines([line])

    def write_lines(self, lines: list[str]) -> None:
        """Keep the last of ``lines`` and log them all as one record (at INFO)."""
        if not lines:
            return
        self.lines.extend(lines[-(self.lines.maxlen or len(lines)) :])
        if self._to_log and self._log.isEnabledFor(logging.INFO):
            self._log.info("%s%s", self._prefix, self._separator.join(lines))


def failure_message(outcome: Outcome, tail: list[str]) -> str:
    """The message reported with a final state: the action's own reason and message (when it
    wrote them), tinklet's reason, then the last output lines."""
    message = outcome.reason or ("success" if outcome.state is State.SUCCESS else outcome.state.value.lower())
    own = ": ".join(part for part in (outcome.action_reason, outcome.action_message) if part)
    if own and outcome.state is not State.SUCCESS:
        if len(own) > MAX_MESSAGE // 2:  # leave room for tinklet's reason and the output
            own = own[: MAX_MESSAGE // 2 - 1] + "…"
        message = f"{own}; {message}"
    if outcome.state is not State.SUCCESS and tail:
        message += "; last output: " + " | ".join(tail[-TAIL_IN_MESSAGE:])
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Worker:
    """Runs actions from one transport on the opened runtime until ``stop`` is set.

    ``on_delivered`` is called, in the worker's thread, with every event the transport
    accepted (``tinklet run`` prints its progress with it). Hooks are called through
    ``manager``; ``execute`` replaces ``manager.hook.tinklet_execute_action`` (the app passes a
    caller limited to the opened runtime and the wrappers). Observers
    (``tinklet_action_event`` and the other observer hooks) are called from an
    :class:`EventDispatcher` thread; ``runtime_name`` and ``protocol`` are what
    ``tinklet_worker_state`` tells them. ``origin`` names a plugin in messages (with its
    distribution): every call into a plugin is checked, and what a plugin gets wrong fails the
    action (or, for the transport, is retried) with a message naming it.
    """

    def __init__(
        self,
        transport: Transport,
        manager: pluggy.PluginManager,
        settings: RuntimeSettings,
        stop: threading.Event,
        options: WorkerOptions | None = None,
        on_delivered: Callable[[Event], None] | None = None,
        log: logging.Logger | None = None,
        execute: Callable[..., Outcome | None] | None = None,
        runtime_name: str = "",
        protocol: str = "",
        origin: Origin = plain_origin,
    ) -> None:
        self._transport = transport
        self._calls = PluginCalls(manager)
        self._origin = origin
        self._hook = manager.hook
        self._settings = settings
        self._stop = stop
        self._options = options or WorkerOptions()
        self._on_delivered = on_delivered
        self._execute_hook = execute or self._hook.tinklet_execute_action
        self._log = log or logging.getLogger("tinklet.worker")
        self._backoff = Backoff(self._options.min_backoff, self._options.max_backoff)
        self._status = StatusLog(self._log)
        self._environment: WorkflowEnvironment | None = None
        self._events = EventDispatcher(self._observe, self._log)
        self._identity = {"runtime": runtime_name, "protocol": protocol, "agent_id": settings.agent_id}

    def run(self) -> None:
        """Loop until ``stop`` is set or the transport is exhausted."""
        self._notify("tinklet_worker_state", running=True, **self._identity)
        try:
            while not self._stop.is_set():
                action = self._next_action()
                if action is None and self._transport.exhausted:
                    break
                if action is not None and self._handle(action):
                    self._backoff.reset()
                    continue
                # nothing to do, the server is down, or it refused the action's RUNNING for good
                # (it may serve the same action again at once): wait before asking again
                self._stop.wait(self._backoff.next_delay())
        finally:
            self._end_workflow()
            self._notify("tinklet_worker_state", running=False, **self._identity)
            self._events.close()

    def _next_action(self) -> Action | None:
        try:
            action = self._transport.read()
        except MalformedAction as exc:
            self._notify("tinklet_server_contact", reachable=True, at=time.time())
            self._status.clear()
            self._log.error("%s: cannot run: %s", exc.action.label, loggable(str(exc)))
            self._report_final(
                exc.action, Outcome(State.FAILED, reason=f"malformed action: {exc}"), [], _now()
            )
            return None
        except TransportError as exc:
            self._notify("tinklet_server_contact", reachable=False, at=time.time())
            text = f"cannot get an action: {loggable(str(exc))}; retrying"
            self._status.note(logging.WARNING, text, kind="read failed")
            return None
        self._notify("tinklet_server_contact", reachable=True, at=time.time())
        if action is None and not self._transport.exhausted:
            self._status.note(logging.INFO, "no action for this worker; waiting")
        else:
            self._status.clear(recovered="action received")
        return action

    def _handle(self, action: Action) -> bool:
        """Run ``action`` and report it; False when its RUNNING was not delivered (not run)."""
        started = _now()
        if not self._deliver(Event(action, State.RUNNING, started_at=started)):
            return False
        if self._stop.is_set():  # stopped while RUNNING was sent: nothing is created
            self._log.info("%s: not started because tinklet is stopping", action.label)
            return True
        ActionLogger(self._log, action).info("%s: running (image %s)", action.label, loggable(action.image))
        try:
            self._enter_workflow(action)
        except Exception as exc:
            reason = f"preparing the workflow environment failed: {exc}"
            self._report_final(action, Outcome(State.FAILED, reason=reason), [], started)
            self._end_workflow()
            return True
        try:
            runnable = self._rewritten(action)
        except PluginFault as exc:
            reason = f"rewriting the action failed: {exc}"
            self._report_final(action, Outcome(State.FAILED, reason=reason), [], started)
            self._end_workflow()
            return True
        result = self._execute_with_retries(runnable)
        if result is None:  # interrupted by shutdown: the server will serve it again
            self._log.info("%s: stopped by shutdown; no final state reported", action.label)
            return True
        outcome, tail = result
        self._report_final(runnable, outcome, tail, started)  # observers see the image that ran
        if outcome.state is not State.SUCCESS:
            self._end_workflow()
        return True

    def _rewritten(self, action: Action) -> Action:
        """The action as every ``tinklet_rewrite_action`` changed it, with the server's ids kept."""
        changed = rewrite_action(self._calls, action, self._origin)
        if changed.image != action.image:
            self._log.info("%s: image rewritten to %s", action.label, loggable(changed.image))
        return changed

    def _execute_with_retries(self, action: Action) -> tuple[Outcome, list[str]] | None:
        attempts = action.retries + 1
        for attempt in range(1, attempts + 1):
            tail = OutputTail(
                action,
                ActionLogger(self._log, action, output=True),
                self._options.tail_lines,
                self._options.log_output,
            )
            try:
                outcome = self._execute(action, tail)
            except ActionInterrupted:
                return None
            if self._stop.is_set():
                return None
            if outcome.state is not State.FAILED or attempt == attempts:
                return outcome, list(tail.lines)
            self._log.warning(
                "%s: %s; retry %d of %d", action.label, loggable(outcome.reason), attempt, action.retries
            )
        raise AssertionError("unreachable")

    def _execute(self, action: Action, tail: OutputTail) -> Outcome:
        deadline = time.monotonic() + action.timeout if action.timeout > 0 else None
        context = ActionContext(
            action=action,
            settings=self._settings,
            deadline=deadline,
            cancelled=self._stop,
            output=tail,
            registry_credentials=self._credentials,
            log=ActionLogger(self._log, action),
            pull_progress=lambda progress: self._pulled(action, progress),
            output_lines=tail.write_lines,
        )
        try:
            outcome = self._execute_hook(context=context)
        except ActionInterrupted:
            raise
        except ActionRefused as exc:
            return Outcome(State.FAILED, reason=f"refused: {one_line(exc)}")
        except PluginFault as exc:  # a plugin's mistake, named: fails the action, not the worker
            return Outcome(State.FAILED, reason=str(exc))
        except Exception as exc:  # a runtime bug or a dead daemon fails the action, not the worker
            return Outcome(State.FAILED, reason=f"runtime error: {one_line(exc)}")
        if outcome is None:
            return Outcome(State.FAILED, reason="no runtime took the action (is a runtime plugin loaded?)")
        if not isinstance(outcome, Outcome):  # an old-style hookwrapper: not checked on the way
            return Outcome(
                State.FAILED, reason=f"a hook wrapper returned {type(outcome).__name__}, not an Outcome"
            )
        return outcome

    def _pulled(self, action: Action, progress: PullProgress) -> None:
        self._notify("tinklet_pull_progress", action=action, progress=progress)

    def _credentials(self, image: str) -> RegistryCredentials | None:
        """The first plugin's login for ``image``'s registry; one that raises or answers with
        something else is skipped with a warning naming it."""
        for plugin, call in self._calls.each("tinklet_registry_credentials"):
            try:
                login = call(registry=image_registry(image), image=image)
            except Exception as exc:
                self._log.warning(
                    "%s: tinklet_registry_credentials raised %s; ignored",
                    self._origin(plugin),
                    error_line(exc),
                )
                continue
            if isinstance(login, RegistryCredentials):
                return login
            if login is None:
                continue
            self._log.warning(
                "%s: tinklet_registry_credentials returned %s, not RegistryCredentials; ignored",
                self._origin(plugin),
                type(login).__name__,
            )
        return None

    def _report_final(self, action: Action, outcome: Outcome, tail: list[str], started: dt.datetime) -> None:
        event = Event(action, outcome.state, started, _now(), failure_message(outcome, tail))
        log = ActionLogger(self._log, action)
        if outcome.state is State.SUCCESS:
            log.info("%s: SUCCESS", action.label)
        else:
            log.error("%s: %s (%s)", action.label, outcome.state.value, loggable(event.message))
        self._deliver(event)

    def _deliver(self, event: Event) -> bool:
        """Send ``event`` until accepted; False when it never can be or tinklet is stopping."""
        status = StatusLog(self._log)
        backoff = Backoff(self._options.min_backoff, self._options.max_backoff)
        while True:
            try:
                self._transport.write(event)
            except TransportError as exc:
                what = f"{event.action.label}: reporting {event.state.value} failed: {loggable(str(exc))}"
                gives_up = not exc.retryable or self._stop.is_set()
                self._notify("tinklet_server_contact", reachable=False, at=time.time())
                self._notify("tinklet_report_retry", event=event, gave_up=gives_up)
                if not exc.retryable:
                    self._log.error("%s; giving up on this action", what)
                    return False
                if self._stop.is_set():
                    self._log.warning("%s; not retried because tinklet is stopping", what)
                    return False
                status.note(logging.WARNING, f"{what}; retrying until delivered", kind="report failed")
                self._stop.wait(backoff.next_delay())
                continue
            self._notify("tinklet_server_contact", reachable=True, at=time.time())
            status.clear(recovered=f"{event.action.label}: {event.state.value} delivered")
            if self._on_delivered is not None:
                self._on_delivered(event)
            self._events.publish(event)
            return True

    def _observe(self, event: Event) -> None:
        self._call_observers("tinklet_action_event", {"event": event})

    def _notify(self, hook_name: str, **arguments: object) -> None:
        """Queue an observer hook call for the observer thread, if any plugin implements it."""
        if getattr(self._hook, hook_name).get_hookimpls():
            self._events.submit(lambda: self._call_observers(hook_name, arguments))

    def _call_observers(self, hook_name: str, arguments: dict[str, object]) -> None:
        """Each observer on its own: one that fails is named and the others still hear of it."""

        def failed(plugin: str, exc: BaseException) -> None:
            self._log.warning("%s: observer %s failed: %s", self._origin(plugin), hook_name, error_line(exc))

        self._calls.call_each(hook_name, arguments, failed)

    def _enter_workflow(self, action: Action) -> None:
        current = self._environment
        if current is not None and current.workflow_id == action.workflow_id:
            return
        self._end_workflow()
        environment = WorkflowEnvironment(
            workflow_id=action.workflow_id,
            agent_id=action.agent_id,
            first_action=action,
            registry_credentials=self._credentials,
        )
        self._environment = environment  # cleaned up even when preparing fails half-way

        def failed(plugin: str, exc: BaseException) -> None:
            raise PluginFault(f"{self._origin(plugin)}: {error_line(exc)}") from exc

        self._calls.call_each("tinklet_prepare_environment", {"environment": environment}, failed)

    def _end_workflow(self) -> None:
        environment, self._environment = self._environment, None
        if environment is None:
            return

        def failed(plugin: str, exc: BaseException) -> None:
            self._log.warning(
                "cleaning up workflow %s failed: %s: %s",
                short_id(environment.workflow_id),
                self._origin(plugin),
                one_line(exc),
            )

        self._calls.call_each("tinklet_cleanup_environment", {"environment": environment}, failed)
