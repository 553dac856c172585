"""The Tink v2 transport: ``proto.WorkflowService`` GetAction / ReportActionStatus over gRPC.

The wire messages (``tinklet_core.protocol.tink_v2_pb2``) are converted here into
:class:`~tinklet_core.model.Action` and from :class:`~tinklet_core.model.Event`; nothing
else in tinklet sees them. Errors come back as :class:`~tinklet_core.errors.TransportError`
with one line naming the server and the gRPC status; this module never logs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import json_format

from tinklet_core.durations import format_go_duration
from tinklet_core.model import Action, Event, State
from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2_grpc as pb_grpc
from tinklet_core.transports.grpc_common import (
    DEFAULT_REPORT_GRACE,
    NOTHING_NOW,
    Connection,
    await_report,
    checked_action,
    connection_options,
    read_error,
    status_code,
    timestamp,
    wait_unless_cancelled,
)

StateType = pb.ActionStatusRequest.StateType

STATE_TYPES: dict[State, pb.ActionStatusRequest.StateType] = {
    State.PENDING: StateType.PENDING,
    State.RUNNING: StateType.RUNNING,
    State.SUCCESS: StateType.SUCCESS,
    State.FAILED: StateType.FAILED,
    State.TIMEOUT: StateType.TIMEOUT,
}
"""How each :class:`State` is written in ``ActionStatusRequest.action_state``."""

class GrpcV2Transport:
    """Talk to a Tink server over the v2 protocol.

    ``credentials`` ``None`` means a plaintext channel; ``server_name`` overrides the name the
    server's TLS certificate must carry (``grpc.ssl_target_name_override``). No client keepalive
    is configured: the Tink server (grpc-go) refuses pings more often than every 5 minutes.

    :meth:`read` abandons its call within about 0.1 s once ``cancelled`` is set and returns
    ``None``. :meth:`write` gets ``report_grace`` seconds more once ``cancelled`` is set (a
    final report should get its chance), then it is abandoned; otherwise it is bounded by
    ``call_timeout``, which must exceed the minute the server may spend retrying internally
    before it answers. After an UNAVAILABLE answer the next call dials a new channel.
    """

    def __init__(
        self,
        target: str,
        identifier: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        cancelled: threading.Event,
        call_timeout: float = 90.0,
        server_name: str | None = None,
        agent_attributes: Mapping[str, Any] | None = None,
        report_grace: float = DEFAULT_REPORT_GRACE,
    ) -> None:
        self._address = target
        self._agent_id = identifier
        self._cancelled = cancelled
        self._call_timeout = call_timeout
        self._report_grace = report_grace
        self._tls = credentials is not None
        self._connection = Connection(target, credentials, server_name, pb_grpc.WorkflowServiceStub)
        self._request = pb.ActionRequest(
            agent_id=identifier, agent_attributes=attributes_message(agent_attributes or {})
        )

    @classmethod
    def from_settings(cls, settings: Any) -> GrpcV2Transport:
        """Build from a transport-settings object (``target``, ``identifier``, ``credentials``,
        ``server_name``, ``cancelled``, ``report_grace``)."""
        return cls(
            settings.target,
            settings.identifier,
            agent_attributes=getattr(settings, "agent_attributes", None),
            **connection_options(settings),
        )

    @property
    def exhausted(self) -> bool:
        """Always False: a server may hand out work at any time."""
        return False

    def read(self) -> Action | None:
        """Ask for the next action; ``None`` when there is none now or ``cancelled`` is set.

        Raises :class:`TransportError` (``retryable`` False for a rejected request or
        credentials) and :class:`MalformedAction` for an action that cannot run.
        """
        if self._cancelled.is_set():
            return None
        future = self._connection.stubs.GetAction.future(self._request, timeout=self._call_timeout)
        if not wait_unless_cancelled(future, self._cancelled):
            return None
        try:
            response = future.result()
        except grpc.FutureCancelledError:
            return None
        except grpc.RpcError as exc:
            self._connection.failed(exc)
            code = status_code(exc)
            if code in NOTHING_NOW or code is grpc.StatusCode.CANCELLED:
                return None
            raise read_error("GetAction", self._address, exc, tls=self._tls) from None
        return action_from_response(response, self._agent_id)

    def write(self, event: Event) -> None:
        """Send ``event`` with ReportActionStatus; raise :class:`TransportError` if not delivered.

        NOT_FOUND, INVALID_ARGUMENT (and UNIMPLEMENTED) are not retryable; everything else
        (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED, ABORTED…) is.
        """
        request = status_request(event, self._agent_id)
        what = f"ReportActionStatus {event.state.value} for {event.action.label}"
        future = self._connection.stubs.ReportActionStatus.future(request, timeout=self._call_timeout)
        await_report(
            future,
            what,
            cancelled=self._cancelled,
            grace=self._report_grace,
            connection=self._connection,
            target=self._address,
            tls=self._tls,
        )

    def close(self) -> None:
        """Close the channel (cancelling any call still in flight)."""
        self._connection.close()


def attributes_message(facts: Mapping[str, Any]) -> pb.AgentAttributes:
    """The ``AgentAttributes`` message for hardware facts keyed by proto field name (fields
    this proto does not know are skipped, so newer facts never break an older message)."""
    return json_format.ParseDict(dict(facts), pb.AgentAttributes(), ignore_unknown_fields=True)


def action_from_response(response: pb.ActionResponse, agent_id: str) -> Action:
    """Convert a GetAction answer into an :class:`Action` for ``agent_id``.

    ``namespaces.pid`` wins over the deprecated ``pid``. Raises :class:`MalformedAction`
    (carrying the ids and every entry that could be read) for an entry that cannot be used.
    """
    return checked_action(
        Action(
            workflow_id=response.workflow_id,
            task_id=response.task_id,
            action_id=response.action_id,
            agent_id=agent_id,
            name=response.name,
            image=response.image,
            timeout=int(response.timeout),
            command=tuple(response.command),
            pid_namespace=response.namespaces.pid or response.pid,
            network_namespace=response.namespaces.network,
        ),
        environment=response.environment,
        volumes=response.volumes,
    )


def status_request(event: Event, agent_id: str) -> pb.ActionStatusRequest:
    """Build the ReportActionStatus request for ``event`` sent by ``agent_id``."""
    action = event.action
    request = pb.ActionStatusRequest(
        workflow_id=action.workflow_id,
        agent_id=agent_id,
        task_id=action.task_id,
        action_id=action.action_id,
        action_name=action.name,
        action_state=STATE_TYPES[event.state],
        message=pb.ActionMessage(message=event.message),
    )
    if event.started_at is not None:
        request.execution_start.CopyFrom(timestamp(event.started_at))
    if event.stopped_at is not None:
        request.execution_stop.CopyFrom(timestamp(event.stopped_at))
    if event.duration is not None:
        request.execution_duration = format_go_duration(event.duration)
    return request
