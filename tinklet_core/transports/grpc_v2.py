"""The Tink v2 transport: ``proto.WorkflowService`` GetAction / ReportActionStatus over gRPC.

The wire messages (``tinklet_core.protocol.tink_v2_pb2``) are converted here into
:class:`~tinklet_core.model.Action` and from :class:`~tinklet_core.model.Event`; nothing
else in tinklet sees them. Errors come back as :class:`~tinklet_core.errors.TransportError`
with one line naming the server and the gRPC status; this module never logs.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tinklet_core.durations import format_go_duration
from tinklet_core.errors import MalformedAction, TransportError
from tinklet_core.model import Action, Event, State, Volume
from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2_grpc as pb_grpc
from tinklet_core.workflow import parse_env, parse_volume

StateType = pb.ActionStatusRequest.StateType

STATE_TYPES: dict[State, pb.ActionStatusRequest.StateType] = {
    State.PENDING: StateType.PENDING,
    State.RUNNING: StateType.RUNNING,
    State.SUCCESS: StateType.SUCCESS,
    State.FAILED: StateType.FAILED,
    State.TIMEOUT: StateType.TIMEOUT,
}
"""How each :class:`State` is written in ``ActionStatusRequest.action_state``."""

# GetAction: these mean "no action for you now" (no workflow, or it is not runnable).
_NOTHING_NOW = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION})
# GetAction: asking again the same way will not help.
_READ_FATAL = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
# ReportActionStatus: the workflow is gone or the report is malformed; retrying cannot heal it.
_WRITE_FATAL = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED}
)

_CANCEL_POLL_SECONDS = 0.05
_MAX_DETAILS = 300
# A dead server must be noticed again soon after it comes back: cap gRPC's reconnect backoff
# (its default grows to two minutes, and calls fail fast while it waits).
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 1000),
    ("grpc.min_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


class GrpcV2Transport:
    """Talk to a Tink server over the v2 protocol.

    ``credentials`` ``None`` means a plaintext channel; ``server_name`` overrides the name the
    server's TLS certificate must carry (``grpc.ssl_target_name_override``). No client keepalive
    is configured: the Tink server (grpc-go) refuses pings more often than every 5 minutes.

    :meth:`read` abandons its call within about 0.1 s once ``cancelled`` is set and returns
    ``None``. :meth:`write` is not abandoned (a final report should get its chance); it is
    bounded by ``call_timeout``, which must exceed the minute the server may spend retrying
    internally before it answers.
    """

    def __init__(
        self,
        address: str,
        agent_id: str,
        *,
        credentials: grpc.ChannelCredentials | None,
        cancelled: threading.Event,
        call_timeout: float = 90.0,
        server_name: str | None = None,
    ) -> None:
        self._address = address
        self._agent_id = agent_id
        self._cancelled = cancelled
        self._call_timeout = call_timeout
        self._tls = credentials is not None
        options = list(_CHANNEL_OPTIONS)
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=options)
        self._stub = pb_grpc.WorkflowServiceStub(self._channel)

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
        future = self._stub.GetAction.future(
            pb.ActionRequest(agent_id=self._agent_id), timeout=self._call_timeout
        )
        if not _wait_unless_cancelled(future, self._cancelled):
            future.cancel()
            return None
        try:
            response = future.result()
        except grpc.FutureCancelledError:
            return None
        except grpc.RpcError as exc:
            code = _code(exc)
            if code in _NOTHING_NOW or code is grpc.StatusCode.CANCELLED:
                return None
            raise TransportError(
                _describe("GetAction", self._address, exc, tls=self._tls), retryable=code not in _READ_FATAL
            ) from None
        return action_from_response(response, self._agent_id)

    def write(self, event: Event) -> None:
        """Send ``event`` with ReportActionStatus; raise :class:`TransportError` if not delivered.

        NOT_FOUND, INVALID_ARGUMENT (and UNIMPLEMENTED) are not retryable; everything else
        (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED, ABORTED…) is.
        """
        request = status_request(event, self._agent_id)
        try:
            self._stub.ReportActionStatus(request, timeout=self._call_timeout)
        except grpc.RpcError as exc:
            raise TransportError(
                _describe(
                    f"ReportActionStatus {event.state.value} for {event.action.label}",
                    self._address,
                    exc,
                    tls=self._tls,
                ),
                retryable=_code(exc) not in _WRITE_FATAL,
            ) from None

    def close(self) -> None:
        """Close the channel (cancelling any call still in flight)."""
        self._channel.close()


def action_from_response(response: pb.ActionResponse, agent_id: str) -> Action:
    """Convert a GetAction answer into an :class:`Action` for ``agent_id``.

    ``namespaces.pid`` wins over the deprecated ``pid``. Raises :class:`MalformedAction`
    (carrying the ids and every entry that could be read) for an entry that cannot be used.
    """
    problems: list[str] = []
    try:
        env = parse_env(response.environment, where="environment")
    except ValueError as exc:
        env = ()
        problems.append(str(exc))
    volumes: list[Volume] = []
    for entry in response.volumes:
        try:
            volumes.append(parse_volume(entry))
        except ValueError as exc:
            problems.append(f"volumes: {exc}")
    action = Action(
        workflow_id=response.workflow_id,
        task_id=response.task_id,
        action_id=response.action_id,
        agent_id=agent_id,
        name=response.name,
        image=response.image,
        timeout=int(response.timeout),
        command=tuple(response.command),
        env=env,
        volumes=tuple(volumes),
        pid_namespace=response.namespaces.pid or response.pid,
        network_namespace=response.namespaces.network,
    )
    if not action.image:
        problems.insert(0, "'image' is empty")
    if problems:
        name = action.action_id or action.name or "(no id)"
        raise MalformedAction(f"action {name}: {'; '.join(problems)}", action=action)
    return action


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
        request.execution_start.CopyFrom(_timestamp(event.started_at))
    if event.stopped_at is not None:
        request.execution_stop.CopyFrom(_timestamp(event.stopped_at))
    if event.duration is not None:
        request.execution_duration = format_go_duration(event.duration)
    return request


def _wait_unless_cancelled(future: grpc.Future, cancelled: threading.Event) -> bool:
    """Wait for ``future``; False as soon as ``cancelled`` is set first."""
    done = threading.Event()
    future.add_done_callback(lambda _future: done.set())
    while not done.wait(_CANCEL_POLL_SECONDS):
        if cancelled.is_set():
            return False
    return True


def _timestamp(moment: dt.datetime) -> Timestamp:
    """A protobuf Timestamp; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


def _describe(what: str, address: str, exc: grpc.RpcError, *, tls: bool) -> str:
    """One line: the call, the server, the gRPC status, its details (shortened) and a hint."""
    code = _code(exc)
    details_method = getattr(exc, "details", None)
    details = " ".join(str((details_method() if callable(details_method) else "") or "").split())
    if len(details) > _MAX_DETAILS:
        details = details[: _MAX_DETAILS - 1] + "\u2026"
    status = code.name if code is not None else "UNKNOWN"
    line = f"{what} on tink server {address} failed: {status}"
    if details:
        line += f": {details}"
    hint = _hint(details, tls)
    return f"{line} ({hint})" if hint else line


def _hint(details: str, tls: bool) -> str:
    """What a connection failure most likely means, in words; empty when nothing fits."""
    if "CERTIFICATE_VERIFY_FAILED" in details:
        return "the server's certificate is not signed by a trusted CA"
    if "Hostname Verification" in details or "is not in peer certificate" in details:
        return "the server's certificate does not name this address; a TLS server name may be needed"
    if "WRONG_VERSION_NUMBER" in details:
        return "the server does not seem to speak TLS"
    if "Socket closed" in details:
        if tls:
            return "the server closed the TLS connection: it may want a client certificate (mTLS)"
        return "the server closed the connection: it may expect TLS"
    return ""
