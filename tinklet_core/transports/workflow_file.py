"""Runs a workflow file locally: the transport behind ``tinklet run`` (no Tink server).

It behaves like a server holding one workflow for this worker: the same action is served until
its final state is written, the next one after a SUCCESS, and nothing after a non-SUCCESS.
"""

from __future__ import annotations

from tinklet_core.action_checks import runnable
from tinklet_core.model import Action, Event, State
from tinklet_core.workflow import Workflow


class WorkflowFileTransport:
    """Serves the actions of one :class:`~tinklet_core.workflow.Workflow` in order."""

    def __init__(self, workflow: Workflow) -> None:
        self._actions = workflow.actions
        self._next = 0
        self._failed = False

    def read(self) -> Action | None:
        """The first action without a final state, or ``None`` when the workflow ended.

        Raises :class:`~tinklet_core.errors.MalformedAction` for an action that cannot run (a
        negative timeout): the worker reports it FAILED, which ends the workflow.
        """
        if self.exhausted:
            return None
        return runnable(self._actions[self._next])

    def write(self, event: Event) -> None:
        """Record ``event``; a final state moves on (SUCCESS) or ends the workflow."""
        if self.exhausted or event.action.action_id != self._actions[self._next].action_id:
            return
        if event.state is State.SUCCESS:
            self._next += 1
        elif event.state.is_final:
            self._failed = True

    @property
    def exhausted(self) -> bool:
        """True once every action succeeded or one did not."""
        return self._failed or self._next >= len(self._actions)

    def close(self) -> None:
        """Nothing to release."""
