"""What ``tinklet run`` shows while a workflow runs.

Not on a terminal, one plain line per reported state (:func:`state_line`), as it always was. On a
terminal, :class:`LiveProgress` keeps the running action on one line that changes in place —
``RUNNING``, the image pull's progress as the runtime reports it, then the final state — and
moves on to a new line for the next action. It is an observer (``tinklet_action_event``,
``tinklet_pull_progress``), so drawing never slows an action.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from tinklet_core.hookspecs import hookimpl
from tinklet_core.log_safe import loggable, short_id
from tinklet_core.model import Action, Event, PullPhase, PullProgress, State

CLEAR_LINE = "\r\x1b[K"
MIB = 1024 * 1024


def workflow_name(workflow_id: str) -> str:
    """A workflow's id as ``tinklet run`` shows it: escaped and shortened (see :func:`action_name`)."""
    return short_id(workflow_id)


def action_name(action: Action) -> str:
    """``task/action`` as ``tinklet run`` shows it: escaped and shortened, never a terminal
    control sequence (the names come from the workflow)."""
    return f"{short_id(action.task_id)}/{short_id(action.name)}"


def state_line(event: Event) -> str:
    """``RUNNING  t/a``, ``SUCCESS  t/a (0.3s)``, ``FAILED   t/b (1.0s): exit code 3; …``."""
    if event.state is State.RUNNING:
        return f"{'RUNNING':<8} {action_name(event.action)}"
    duration = event.duration.total_seconds() if event.duration else 0.0
    detail = "" if event.state is State.SUCCESS else f": {loggable(event.message)}"  # holds output
    return f"{event.state.value:<8} {action_name(event.action)} ({duration:.1f}s){detail}"


def pull_text(progress: PullProgress) -> str:
    """``pulling IMAGE 12.0/40.0 MiB``, ``pulling IMAGE 2/5 layers``, ``pulled IMAGE``…"""
    image = loggable(progress.image)
    if progress.phase is PullPhase.FINISHED:
        return f"pulled {image}"
    if progress.phase is PullPhase.FAILED:
        return f"pull of {image} failed"
    if progress.phase is PullPhase.STARTED or not (progress.current or progress.total):
        return f"pulling {image}"
    if progress.unit == "bytes":
        done = f"{progress.current / MIB:.1f}"
        return f"pulling {image} {done}/{progress.total / MIB:.1f} MiB" if progress.total else (
            f"pulling {image} {done} MiB"
        )
    of_total = f"/{progress.total}" if progress.total else ""
    return f"pulling {image} {progress.current}{of_total} {progress.unit}"


class LiveProgress:
    """Draws the running action's line in place on a terminal ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._running: Event | None = None
        self._started = 0.0

    @hookimpl
    def tinklet_action_event(self, event: Event) -> None:
        """RUNNING starts the action's line; a final state ends it."""
        if event.state is State.RUNNING:
            self._running, self._started = event, time.monotonic()
            self._draw(state_line(event), end="")
        elif event.state.is_final:
            self._running = None
            self._draw(state_line(event), end="\n")

    @hookimpl
    def tinklet_pull_progress(self, action: Action, progress: PullProgress) -> None:
        """Show how far the running action's pull has come."""
        running = self._running
        if running is None or running.action.action_id != action.action_id:
            return
        elapsed = time.monotonic() - self._started
        self._draw(f"{state_line(running)}  {pull_text(progress)} ({elapsed:.0f}s)", end="")

    def _draw(self, text: str, end: str) -> None:
        with self._lock:
            # the cursor is left at the line's start, so a log line written meanwhile replaces it
            self._stream.write(CLEAR_LINE + text + (end or "\r"))
            self._stream.flush()
