"""The test Tink server's state, shared by every protocol generation's servicer: each workflow's
progress, what was received and served, and the fault injection in force. One lock (a
condition, so waiters wake on every change) guards all of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinklet_core.model import Action, State
from tinklet_core.testing.tink_server.faults import ReportFaults
from tinklet_core.testing.tink_server.records import Call, Report
from tinklet_core.workflow import Workflow


@dataclass
class WorkflowRun:
    """The server-side progress of one workflow (private to one server instance)."""

    workflow: Workflow
    state: State = State.PENDING
    finals: dict[str, State] = field(default_factory=dict)
    # v1's context: the current action (index, name; "" before the first report) and its state.
    index: int = 0
    current: str = ""
    current_state: State = State.PENDING

    def next_action(self) -> Action | None:
        """The first action with no final state yet."""
        return next((a for a in self.workflow.actions if a.action_id not in self.finals), None)

    def find(self, action_id: str) -> Action | None:
        """The action with this id, if the workflow has it."""
        return next((a for a in self.workflow.actions if a.action_id == action_id), None)

    def record(self, action_id: str, state: State) -> None:
        """Take a reported state: a non-SUCCESS state becomes the workflow's, the last SUCCESS ends it."""
        if self.state.is_final:
            return
        if state.is_final:
            self.finals[action_id] = state
        if state is not State.SUCCESS:
            self.state = state
        elif all(self.finals.get(a.action_id) is State.SUCCESS for a in self.workflow.actions):
            self.state = State.SUCCESS
        else:
            self.state = State.RUNNING


class ServerState:
    """Everything one test server knows; take :attr:`changed` before reading or changing it."""

    def __init__(
        self,
        runs: list[WorkflowRun],
        agent_id: str,
        *,
        get_action_delay: float,
        legacy_pid: bool,
        on_report: Callable[[Report], None] | None,
        hardware: dict[str, str],
        filter_contexts: bool,
    ) -> None:
        self.runs = runs
        self.agent_id = agent_id
        self.get_action_delay = get_action_delay
        self.legacy_pid = legacy_pid
        self.on_report = on_report
        self.hardware = hardware
        self.filter_contexts = filter_contexts
        self.changed = threading.Condition(threading.RLock())
        self.reports: list[Report] = []
        self.served: list[str] = []
        self.agent_attributes: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.faults = ReportFaults()
        self.stopping = threading.Event()

    def called(self, method: str) -> None:
        """Record that a call of ``method`` arrived."""
        with self.changed:
            self.calls.append(Call(method, time.monotonic()))
            self.changed.notify_all()

    def accept(self, run: WorkflowRun, report: Report) -> None:
        """Record an accepted report (the caller holds the lock)."""
        self.reports.append(report)
        run.record(report.action_id, report.state)
        self.changed.notify_all()

    def notify(self, report: Report) -> None:
        """Hand a report to ``on_report``, if one was given (outside the lock)."""
        if self.on_report is not None:
            self.on_report(report)

    def run_named(self, workflow_id: str) -> WorkflowRun | None:
        """The run of the workflow with this id, if any."""
        return next((run for run in self.runs if run.workflow.workflow_id == workflow_id), None)

    def run_of(self, workflow_id: str, action_id: str) -> WorkflowRun | None:
        """The run holding ``action_id``; the one named ``workflow_id`` first (v2 matches on ids)."""
        ordered = sorted(self.runs, key=lambda run: run.workflow.workflow_id != workflow_id)
        return next((run for run in ordered if run.find(action_id) is not None), None)
