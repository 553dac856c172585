"""``tinklet run``'s state lines and closing summary, and the signals that stop a run."""

from __future__ import annotations

import logging
import signal
import threading

from tinklet_core.model import Event, State
from tinklet_core.progress import state_line, workflow_name

log = logging.getLogger("tinklet")


class RunSummary:
    """Keeps the final states for the closing summary and, with ``echo``, prints each state as a
    plain line as ``tinklet run`` goes (on a terminal :class:`LiveProgress` draws them instead)."""

    def __init__(self, total: int, echo: bool = True) -> None:
        self.total = total
        self.echo = echo
        self.finals: list[Event] = []

    def record(self, event: Event) -> None:
        """Keep a final event; print the event's line when echoing."""
        if event.state.is_final:
            self.finals.append(event)
        if self.echo:
            print(state_line(event), flush=True)

    @property
    def succeeded(self) -> bool:
        """True when every action ran and succeeded."""
        return len(self.finals) == self.total and all(e.state is State.SUCCESS for e in self.finals)

    def closing_line(self, workflow_id: str) -> str:
        """``workflow demo: SUCCESS (4 of 4 actions succeeded)`` and the like."""
        workflow_id = workflow_name(workflow_id)  # escaped and shortened: it comes from the file
        succeeded = sum(1 for event in self.finals if event.state is State.SUCCESS)
        not_run = self.total - len(self.finals)
        if self.succeeded:
            return f"workflow {workflow_id}: SUCCESS ({succeeded} of {self.total} actions succeeded)"
        last = self.finals[-1].state.value if self.finals else "STOPPED"
        return f"workflow {workflow_id}: {last} ({succeeded} of {self.total} succeeded, {not_run} not run)"


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT; the runtime stops its action on it."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
