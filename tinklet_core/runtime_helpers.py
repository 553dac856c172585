"""Small helpers every container runtime plugin needs, kept in the core so they are written once.

- :class:`Background` runs one blocking client call (a pull, an output stream then a wait) in a
  daemon thread, so the runtime can watch the deadline and shutdown with
  :func:`tinklet_core.runtime.wait_for_exit` instead of trusting a client timeout. A thread the
  caller gave up on ends when the daemon answers and never keeps tinklet alive.
- :func:`pull_within_deadline` runs an image pull under the action's deadline and shutdown.
- :func:`exit_outcome` turns a container's exit code into the Outcome every runtime reports.
- :func:`one_line`, :func:`innermost_reason` and :func:`without_secret` word failure reasons:
  one line, the operating system's words rather than a wrapper's repr, and never a password.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from tinklet_core.errors import ActionInterrupted
from tinklet_core.model import Outcome, PullPhase, PullProgress, State
from tinklet_core.redaction import mask_secret
from tinklet_core.runtime import ActionContext, WaitResult, wait_for_exit

T = TypeVar("T")
MAX_REASON = 400


class Background(Generic[T]):
    """Runs ``target`` in a daemon thread at once; :attr:`done` is set when it returned or raised."""

    def __init__(self, target: Callable[[], T], name: str) -> None:
        self.done = threading.Event()
        self._target = target
        self._outcome: tuple[T | None, BaseException | None] = (None, None)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds; True once the call finished."""
        self._thread.join(timeout)
        return self.done.is_set()

    def result(self) -> T:
        """The call's value, or its exception raised again. Only once :attr:`done` is set."""
        if not self.done.is_set():
            raise RuntimeError(f"{self._thread.name} has not finished")
        value, error = self._outcome
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    def _run(self) -> None:
        try:
            self._outcome = (self._target(), None)
        except BaseException as exc:  # handed to the caller by result()
            self._outcome = (None, exc)
        finally:
            self.done.set()


def one_line(text: object, limit: int = MAX_REASON) -> str:
    """``text`` with runs of whitespace collapsed to one space, cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def innermost_reason(exc: BaseException) -> str:
    """The operating system's words buried in a connection error, else the error's own text.

    HTTP client libraries wrap ``ConnectionRefusedError`` / ``FileNotFoundError`` several layers
    deep; a user wants "Connection refused", not the wrapper's repr.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return one_line(current.strerror)
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return one_line(str(exc) or type(exc).__name__)


def without_secret(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked in every encoding (plain, base64, JSON, URL): see
    :func:`tinklet_core.redaction.mask_secret`, where the rule is written once."""
    return mask_secret(text, secret)


def exit_outcome(code: int, oom_killed: Callable[[], bool]) -> Outcome:
    """SUCCESS for exit code 0, else FAILED ``exit code N`` (noting an out-of-memory kill).

    ``oom_killed`` is asked only for a non-zero code, so a success costs no extra API call.
    """
    if code == 0:
        return Outcome(State.SUCCESS, exit_code=0)
    reason = f"exit code {code}"
    if oom_killed():
        reason += " (killed: out of memory)"
    return Outcome(State.FAILED, reason=reason, exit_code=code)


def pull_within_deadline(context: ActionContext, image: str, pull: Callable[[], object]) -> Outcome | None:
    """Run the blocking ``pull`` in the background, bounded by the action's deadline.

    ``None`` once the image is pulled (a failed pull's exception is raised again); a TIMEOUT
    outcome when the deadline passes first; :class:`ActionInterrupted` on shutdown. A pull the
    action gave up on finishes (or fails) on its own in its daemon thread. The pull's
    ``STARTED`` and its ``FINISHED`` or ``FAILED`` go to ``context.pull_progress``.
    """
    context.pull_progress(PullProgress(image, PullPhase.STARTED))
    call = Background(pull, name=f"pull {image}")
    waited = wait_for_exit(call.done, context)
    if waited is WaitResult.EXITED:
        try:
            call.result()
        except BaseException:
            context.pull_progress(PullProgress(image, PullPhase.FAILED))
            raise
        context.pull_progress(PullProgress(image, PullPhase.FINISHED))
        return None
    context.pull_progress(PullProgress(image, PullPhase.FAILED))
    if waited is WaitResult.CANCELLED:
        raise ActionInterrupted(f"{context.action.label}: stopped while pulling {image}")
    return Outcome(State.TIMEOUT, reason=f"timed out after {context.action.timeout}s pulling {image}")
