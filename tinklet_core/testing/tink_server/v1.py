"""The v1 protocol (``proto.WorkflowService``: GetWorkflowContexts, GetWorkflowActions,
ReportActionStatus) of the test Tink server; v1-legacy serves the same under its older name.

- Each workflow has a context (current action index, name and state). GetWorkflowContexts
  with an empty ``worker_id`` → INVALID_ARGUMENT; otherwise it streams the context of each
  workflow with an action of that worker, filtered as the upstream server filters: nothing
  once FAILED/TIMEOUT or after the last action's SUCCESS; after a SUCCESS only when it was the
  first action's (an upstream quirk: a worker must go on to the next action from the list it
  already has); else when the current action is that worker's. ``filter_contexts=False``
  streams every context of the worker, unfiltered (a server a worker must not trust).
- GetWorkflowActions: every action of the workflow, each with its ``worker_id`` (the action's
  ``agent_id``); empty id → INVALID_ARGUMENT, unknown → ABORTED.
- ReportActionStatus without ``workflow_id``, ``task_name`` or ``action_name`` →
  INVALID_ARGUMENT; an unknown workflow → NOT_FOUND. The report must be for the current action
  — and a RUNNING report, once any action has been reported, is for the *next* one — else
  INVALID_ARGUMENT (past the last action: FAILED_PRECONDITION).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import grpc

from tinklet_core.model import Action, State
from tinklet_core.protocol import tink_v1_workflow_pb2 as v1_pb
from tinklet_core.protocol.tink_v1_services import V1_SERVICE, service_handler
from tinklet_core.testing.tink_server.faults import refuse
from tinklet_core.testing.tink_server.records import Report, abort, message_time, volume_text
from tinklet_core.testing.tink_server.state import ServerState, WorkflowRun

_V1_STATES: dict[v1_pb.State, State] = {
    v1_pb.STATE_PENDING: State.PENDING,
    v1_pb.STATE_RUNNING: State.RUNNING,
    v1_pb.STATE_SUCCESS: State.SUCCESS,
    v1_pb.STATE_FAILED: State.FAILED,
    v1_pb.STATE_TIMEOUT: State.TIMEOUT,
}
_V1_WIRE_STATES = {state: number for number, state in _V1_STATES.items()}


def add_v1_service(server: grpc.Server, state: ServerState, service: str = V1_SERVICE) -> None:
    """Serve the v1 WorkflowService from ``state`` on ``server`` under the service name ``service``."""
    server.add_generic_rpc_handlers((service_handler(V1Servicer(state), service),))


def workflow_context(run: WorkflowRun) -> v1_pb.WorkflowContext:
    """The v1 context of a workflow: its current action and that action's state."""
    actions = run.workflow.actions
    return v1_pb.WorkflowContext(
        workflow_id=run.workflow.workflow_id,
        current_worker=actions[run.index].agent_id if actions else "",
        current_task=actions[run.index].task_id if run.current and actions else "",
        current_action=run.current,
        current_action_index=run.index,
        current_action_state=_V1_WIRE_STATES[run.current_state],
        total_number_of_actions=len(actions),
    )


def next_index(run: WorkflowRun) -> int | None:
    """The index the context points a worker at (as the worker works it out), if any."""
    if run.current_state in (State.FAILED, State.TIMEOUT):
        return None
    index = run.index + (1 if run.current_state is State.SUCCESS else 0)
    return index if index < len(run.workflow.actions) else None


def applicable(run: WorkflowRun, worker_id: str) -> bool:
    """Upstream's isApplicableToSend (quirk included: after a SUCCESS, only at index 0)."""
    actions = run.workflow.actions
    if run.current_state in (State.FAILED, State.TIMEOUT) or not actions:
        return False
    if run.current_state is State.SUCCESS:
        if run.index == len(actions) - 1 or run.index != 0:
            return False
        return actions[1].agent_id == worker_id
    return actions[run.index].agent_id == worker_id


class V1Servicer:
    """The v1 WorkflowService over a server's :class:`ServerState` (under either service name)."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def GetWorkflowContexts(
        self, request: v1_pb.WorkflowContextRequest, context: grpc.ServicerContext
    ) -> Iterator[v1_pb.WorkflowContext]:
        self._state.called("GetWorkflowContexts")
        yield from self._contexts(request, context)

    def _contexts(
        self, request: v1_pb.WorkflowContextRequest, context: grpc.ServicerContext
    ) -> list[v1_pb.WorkflowContext]:
        if not request.worker_id:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "worker_id is invalid")
        state = self._state
        answers = []
        with state.changed:
            for run in state.runs:
                actions = run.workflow.actions
                if not any(a.agent_id == request.worker_id for a in actions):
                    continue
                if state.filter_contexts and not applicable(run, request.worker_id):
                    continue
                answers.append(workflow_context(run))
                index = next_index(run)
                if index is not None and actions[index].agent_id == request.worker_id:
                    state.served.append(actions[index].action_id)
            state.changed.notify_all()
        return answers

    def GetWorkflowActions(
        self, request: v1_pb.WorkflowActionsRequest, context: grpc.ServicerContext
    ) -> v1_pb.WorkflowActionList:
        self._state.called("GetWorkflowActions")
        if not request.workflow_id:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "workflow_id is invalid")
        run = self._state.run_named(request.workflow_id)
        if run is None:
            abort(context, grpc.StatusCode.ABORTED, "workflow_id is invalid")
        return v1_pb.WorkflowActionList(action_list=[_v1_action(a) for a in run.workflow.actions])

    def ReportActionStatus(
        self, request: v1_pb.WorkflowActionStatus, context: grpc.ServicerContext
    ) -> v1_pb.Empty:
        state = self._state
        state.called("ReportActionStatus")
        for name in ("workflow_id", "task_name", "action_name"):
            if not getattr(request, name):
                abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"{name} is invalid")
        reported = _V1_STATES[request.action_status]
        with state.changed:
            run = state.run_named(request.workflow_id)
            if run is None:
                abort(context, grpc.StatusCode.NOT_FOUND, f"no workflow {request.workflow_id}")
            actions = run.workflow.actions
            index = run.index + (1 if reported is State.RUNNING and run.current else 0)
            if index >= len(actions):
                abort(context, grpc.StatusCode.FAILED_PRECONDITION, "invalid action index")
            action = actions[index]
            if (action.task_id, action.name) != (request.task_name, request.action_name):
                abort(context, grpc.StatusCode.INVALID_ARGUMENT, "reported action is not the current action")
            refusal = state.faults.take(reported)
            if refusal is None:
                run.index, run.current, run.current_state = index, action.name, reported
                report = Report(
                    workflow_id=request.workflow_id,
                    task_id=request.task_name,
                    action_id=action.action_id,
                    action_name=request.action_name,
                    state=reported,
                    message=request.message,
                    execution_start=None,
                    execution_stop=None,
                    duration="",
                    agent_id=request.worker_id,
                    received_at=dt.datetime.now(dt.UTC),
                    seconds=int(request.seconds),
                    created_at=message_time(request, "created_at"),
                )
                state.accept(run, report)
        if refusal is not None:
            refuse(context, refusal, state.stopping)
        state.notify(report)
        return v1_pb.Empty()


def _v1_action(action: Action) -> v1_pb.WorkflowAction:
    return v1_pb.WorkflowAction(
        task_name=action.task_id,
        name=action.name,
        image=action.image,
        timeout=action.timeout,
        command=list(action.command),
        worker_id=action.agent_id,
        volumes=[volume_text(volume) for volume in action.volumes],
        environment=[f"{key}={value}" for key, value in action.env],
        pid=action.pid_namespace,
    )
