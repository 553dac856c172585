"""The v2 protocol (``proto.WorkflowService`` GetAction / ReportActionStatus) of the test Tink server.

- GetAction with an empty ``agent_id`` → INVALID_ARGUMENT; another agent, or no workflow →
  NOT_FOUND; no workflow pending or running any more (all done, or one failed) →
  FAILED_PRECONDITION. Otherwise the first action of the first unfinished workflow that has
  no final state yet — so an action reported RUNNING (or not at all) is served again.
- ReportActionStatus without ``workflow_id``, ``task_id`` or ``action_id`` (or with state
  UNSPECIFIED) → INVALID_ARGUMENT; an unknown action or another agent → NOT_FOUND. A
  non-SUCCESS state becomes the workflow's state (FAILED/TIMEOUT end it); SUCCESS of its last
  outstanding action ends it with SUCCESS.
"""

from __future__ import annotations

import datetime as dt

import grpc
from google.protobuf import json_format

from tinklet_core.model import Action, State
from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2_grpc as pb_grpc
from tinklet_core.testing.tink_server.faults import hold, refuse
from tinklet_core.testing.tink_server.records import Report, abort, message_time, volume_text
from tinklet_core.testing.tink_server.state import ServerState

_StateType = pb.ActionStatusRequest.StateType
_STATES: dict[int, State] = {
    _StateType.PENDING: State.PENDING,
    _StateType.RUNNING: State.RUNNING,
    _StateType.SUCCESS: State.SUCCESS,
    _StateType.FAILED: State.FAILED,
    _StateType.TIMEOUT: State.TIMEOUT,
}


def add_v2_service(server: grpc.Server, state: ServerState) -> None:
    """Serve the v2 WorkflowService from ``state`` on ``server``."""
    pb_grpc.add_WorkflowServiceServicer_to_server(V2Servicer(state), server)


class V2Servicer(pb_grpc.WorkflowServiceServicer):
    """The v2 WorkflowService over a server's :class:`ServerState`."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def GetAction(self, request: pb.ActionRequest, context: grpc.ServicerContext) -> pb.ActionResponse:
        state = self._state
        state.called("GetAction")
        hold(context, state.get_action_delay, state.stopping)
        with state.changed:
            state.agent_attributes.append(
                json_format.MessageToDict(request.agent_attributes, preserving_proto_field_name=True)
            )
        if not request.agent_id:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "agent_id is required")
        with state.changed:
            if request.agent_id != state.agent_id or not state.runs:
                abort(context, grpc.StatusCode.NOT_FOUND, f"no workflow for agent {request.agent_id}")
            for run in state.runs:
                if run.state.is_final:
                    continue
                action = run.next_action()
                if action is None:
                    continue
                if not context.is_active():
                    abort(context, grpc.StatusCode.CANCELLED, "the client went away")
                state.served.append(action.action_id)
                state.changed.notify_all()
                return self._response(action)
        abort(context, grpc.StatusCode.FAILED_PRECONDITION, "no workflow of this agent is pending or running")

    def ReportActionStatus(
        self, request: pb.ActionStatusRequest, context: grpc.ServicerContext
    ) -> pb.ActionStatusResponse:
        state = self._state
        state.called("ReportActionStatus")
        missing = [name for name in ("workflow_id", "task_id", "action_id") if not getattr(request, name)]
        if missing:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"missing {', '.join(missing)}")
        reported = _STATES.get(request.action_state)
        if reported is None:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "action_state is UNSPECIFIED")
        report = _report_from(request, reported)
        with state.changed:
            run = state.run_of(request.workflow_id, request.action_id)
            if run is None or request.agent_id != state.agent_id:
                abort(context, grpc.StatusCode.NOT_FOUND, f"no action {request.action_id} for this agent")
            refusal = state.faults.take(reported)
            if refusal is None:
                state.accept(run, report)
        if refusal is not None:
            refuse(context, refusal, state.stopping)
        state.notify(report)
        return pb.ActionStatusResponse()

    def _response(self, action: Action) -> pb.ActionResponse:
        return pb.ActionResponse(
            workflow_id=action.workflow_id,
            task_id=action.task_id,
            agent_id=self._state.agent_id,
            action_id=action.action_id,
            name=action.name,
            image=action.image,
            timeout=action.timeout,
            command=list(action.command),
            volumes=[volume_text(volume) for volume in action.volumes],
            environment=[f"{key}={value}" for key, value in action.env],
            pid=action.pid_namespace,
            namespaces=pb.Namespaces(
                network=action.network_namespace,
                pid="" if self._state.legacy_pid else action.pid_namespace,
            ),
        )


def _report_from(request: pb.ActionStatusRequest, state: State) -> Report:
    return Report(
        workflow_id=request.workflow_id,
        task_id=request.task_id,
        action_id=request.action_id,
        action_name=request.action_name,
        state=state,
        message=request.message.message,
        execution_start=message_time(request, "execution_start"),
        execution_stop=message_time(request, "execution_stop"),
        duration=request.execution_duration,
        agent_id=request.agent_id,
        received_at=dt.datetime.now(dt.UTC),
    )
