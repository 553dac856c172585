"""The Tink v1 transports: GetWorkflowContexts / GetWorkflowActions / ReportActionStatus over gRPC.

One implementation serves two dialects (PROTOCOL.md, "v1"):

- ``v1`` (tink v0.9 … v0.12): the service is ``proto.WorkflowService``; the worker id is
  ``--identifier`` as given.
- ``v1-legacy`` (tink v0.6 … v0.8): the same messages under
  ``github.com.tinkerbell.tink.protos.workflow.WorkflowService``; the worker id is the machine's
  hardware id, so an ``--identifier`` that is a MAC or an IP is first resolved with
  HardwareService ``ByMAC`` / ``ByIP`` (quietly asked again while the server does not know the
  machine yet). Any other identifier is used as is.

How work is found: stream the contexts of this worker's workflows; for each, fetch its action
list and take the action the context points at — the one after an action shown SUCCESS (none
after the last), or the one shown PENDING or RUNNING (a worker restarted mid-action resumes
it) — when that action's ``worker_id`` is this worker's. Workflows shown FAILED or TIMEOUT
are done. After a delivered SUCCESS the next action of the same list is run without asking
again, as the upstream worker does: the upstream server stops streaming a workflow's context
once an action after the first is SUCCESS (until the next one is reported RUNNING). A workflow
stops here at its first non-SUCCESS.

The server checks that every report is for the workflow's current action, and counts a RUNNING
report as the start of the *next* action once an action has been reported; so the RUNNING of
an action the context already shows RUNNING is not sent again. This module never logs, except
one line when a MAC or IP has been resolved to a hardware id.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import grpc

from tinklet_core.errors import TransportError
from tinklet_core.log_safe import short_id
from tinklet_core.model import Action, Event, State
from tinklet_core.protocol import tink_v1_hardware_pb2 as hw_pb
from tinklet_core.protocol import tink_v1_hardware_pb2_grpc as hw_grpc
from tinklet_core.protocol import tink_v1_workflow_pb2 as pb
from tinklet_core.protocol.tink_v1_services import V1_LEGACY_SERVICE, V1_SERVICE, WorkflowServiceStub
from tinklet_core.transports.grpc_common import (
    DEFAULT_REPORT_GRACE,
    Connection,
    await_report,
    checked_action,
    collect_stream,
    connection_options,
    read_error,
    status_code,
    timestamp,
    wait_unless_cancelled,
)

V1_STATES: dict[State, pb.State] = {
    State.PENDING: pb.STATE_PENDING,
    State.RUNNING: pb.STATE_RUNNING,
    State.FAILED: pb.STATE_FAILED,
    State.TIMEOUT: pb.STATE_TIMEOUT,
    State.SUCCESS: pb.STATE_SUCCESS,
}
"""How each :class:`State` is written in ``WorkflowActionStatus.action_status``."""

# Read calls answered with these mean "nothing for this worker now" (no workflow, unknown worker,
# a workflow the server cannot read right now); ask again later, quietly.
_QUIET = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ABORTED,
    }
)
_MAC = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}", re.IGNORECASE)
_log = logging.getLogger("tinklet.transport")


@dataclass(frozen=True)
class Dialect:
    """What differs between v1 and v1-legacy: the service name and whether ids are resolved."""

    name: str
    service: str
    resolves_hardware: bool


V1 = Dialect("v1", V1_SERVICE, resolves_hardware=False)
V1_LEGACY = Dialect("v1-legacy", V1_LEGACY_SERVICE, resolves_hardware=True)


@dataclass(frozen=True)
class _Stubs:
    """The stubs one channel carries."""

    workflow: WorkflowServiceStub
    hardware: hw_grpc.HardwareServiceStub


@dataclass
class _Plan:
    """The action list of the workflow being worked on and the index of the action handed out."""

    workflow_id: str
    actions: list[Any]
    index: int
    running_reported: bool


def hardware_lookup(identifier: str) -> hw_pb.GetRequest | None:
    """The ByMAC/ByIP request for an identifier that is a MAC (lower-cased, ``:``) or an IP."""
    text = identifier.strip()
    if _MAC.fullmatch(text):
        return hw_pb.GetRequest(mac=text.lower().replace("-", ":"))
    try:
        return hw_pb.GetRequest(ip=str(ipaddress.ip_address(text)))
    except ValueError:
        return None


def next_index(context: Any, actions: list[Any]) -> int | None:
    """The index of the action a v1 context points at, or None when the workflow has none.

    SUCCESS → the action after it (None after the last); PENDING or RUNNING → that action;
    FAILED or TIMEOUT → None.
    """
    state = context.current_action_state
    index = int(context.current_action_index)
    if state in (pb.STATE_FAILED, pb.STATE_TIMEOUT):
        return None
    if state == pb.STATE_SUCCESS:
        index += 1
    return index if 0 <= index < len(actions) else None


class GrpcV1Transport:
    """Talk to a Tink server over the v1 protocol (``legacy=True``: tink v0.6 … v0.8's dialect).

    ``credentials`` None means plaintext; ``server_name`` overrides the name the server's TLS
    certificate must carry. :meth:`read` gives up within about 0.1 s once ``cancelled`` is set
    and returns None; :meth:`write` gets ``report_grace`` seconds more once ``cancelled`` is set,
    and is otherwise bounded by ``call_timeout`` (longer than the minute a server may spend
    retrying internally). After an UNAVAILABLE answer the next call dials a new channel.
    """

    def __init__(
        self,
        target: str,
        identifier: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        cancelled: threading.Event,
        server_name: str | None = None,
        legacy: bool = False,
        call_timeout: float = 90.0,
        report_grace: float = DEFAULT_REPORT_GRACE,
    ) -> None:
        self.dialect = V1_LEGACY if legacy else V1
        self._target = target
        self._identifier = identifier
        self._cancelled = cancelled
        self._call_timeout = call_timeout
        self._report_grace = report_grace
        self._tls = credentials is not None
        service = self.dialect.service
        self._connection = Connection(
            target,
            credentials,
            server_name,
            lambda channel: _Stubs(
                WorkflowServiceStub(channel, service), hw_grpc.HardwareServiceStub(channel)
            ),
        )
        self._lookup = hardware_lookup(identifier) if self.dialect.resolves_hardware else None
        self._worker_id: str | None = None if self._lookup is not None else identifier
        self._plan: _Plan | None = None
        self._stopped: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Any, *, legacy: bool = False) -> GrpcV1Transport:
        """Build from a transport-settings object (``target``, ``identifier``, ``credentials``,
        ``server_name``, ``cancelled``, ``report_grace``)."""
        return cls(settings.target, settings.identifier, legacy=legacy, **connection_options(settings))

    @property
    def exhausted(self) -> bool:
        """Always False: a server may hand out work at any time."""
        return False

    @property
    def worker_id(self) -> str | None:
        """The worker id the server knows this machine by (None until a MAC/IP is resolved)."""
        return self._worker_id

    # -- reading -----------------------------------------------------------------------------

    def read(self) -> Action | None:
        """The next action for this worker, or None for "nothing now" (or ``cancelled``).

        Raises :class:`TransportError` when the server cannot be asked (an
        :class:`~tinklet_core.transports.grpc_common.UnsupportedProtocol` when it does not
        speak this dialect) and :class:`~tinklet_core.errors.MalformedAction` for an action
        that cannot run.
        """
        if self._cancelled.is_set():
            return None
        worker_id = self._worker_id or self._resolve()
        if worker_id is None:
            return None
        plan = self._plan
        if plan is not None and self._ours(plan.actions, plan.index, worker_id):
            return self._action(plan)
        self._plan = None
        contexts = self._contexts(worker_id)
        for context in contexts or ():
            if self._cancelled.is_set():
                return None
            if context.workflow_id in self._stopped:
                continue
            actions = self._actions(context.workflow_id)
            index = next_index(context, actions) if actions else None
            if index is None or not self._ours(actions, index, worker_id):
                continue
            # The server already has RUNNING for an action it shows RUNNING (a restarted worker).
            shown_running = context.current_action_state == pb.STATE_RUNNING and bool(context.current_action)
            self._plan = _Plan(context.workflow_id, actions, index, running_reported=shown_running)
            return self._action(self._plan)
        return None

    def _resolve(self) -> str | None:
        """Look the MAC or IP up; None while the server does not know it (or ``cancelled``)."""
        lookup = self._lookup
        assert lookup is not None
        hardware_stub = self._connection.stubs.hardware
        method = hardware_stub.ByMAC if lookup.mac else hardware_stub.ByIP
        what = f"HardwareService {'ByMAC' if lookup.mac else 'ByIP'}"
        hardware = self._unary(method, lookup, what)
        if hardware is None or not hardware.id:
            return None
        self._worker_id = hardware.id
        shown = short_id(hardware.id)
        _log.info("tink server knows %s as hardware %s: the worker id", self._identifier, shown)
        return self._worker_id

    def _contexts(self, worker_id: str) -> list[Any] | None:
        call = self._connection.stubs.workflow.GetWorkflowContexts(
            pb.WorkflowContextRequest(worker_id=worker_id), timeout=self._call_timeout
        )
        try:
            return collect_stream(call, self._cancelled)
        except grpc.RpcError as exc:
            self._connection.failed(exc)
            if status_code(exc) in _QUIET or self._cancelled.is_set():
                return None
            raise read_error("GetWorkflowContexts", self._target, exc, tls=self._tls) from None

    def _actions(self, workflow_id: str) -> list[Any]:
        request = pb.WorkflowActionsRequest(workflow_id=workflow_id)
        method = self._connection.stubs.workflow.GetWorkflowActions
        answer = self._unary(method, request, "GetWorkflowActions")
        return list(answer.action_list) if answer is not None else []

    def _unary(self, method: Any, request: Any, what: str) -> Any:
        """Call ``method``; None for a quiet "not now" answer or when ``cancelled``."""
        future = method.future(request, timeout=self._call_timeout)
        if not wait_unless_cancelled(future, self._cancelled):
            return None
        try:
            return future.result()
        except grpc.FutureCancelledError:
            return None
        except grpc.RpcError as exc:
            self._connection.failed(exc)
            code = status_code(exc)
            if code in _QUIET or code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN):
                return None
            raise read_error(what, self._target, exc, tls=self._tls) from None

    @staticmethod
    def _ours(actions: list[Any], index: int, worker_id: str) -> bool:
        return 0 <= index < len(actions) and actions[index].worker_id == worker_id

    def _action(self, plan: _Plan) -> Action:
        wire = plan.actions[plan.index]
        return checked_action(
            Action(
                workflow_id=plan.workflow_id,
                task_id=wire.task_name,
                action_id=f"{wire.task_name}/{wire.name}",
                agent_id=self._identifier,
                name=wire.name,
                image=wire.image,
                timeout=int(wire.timeout),
                command=tuple(wire.command),
                pid_namespace=wire.pid,
            ),
            environment=wire.environment,
            volumes=wire.volumes,
        )

    # -- writing -----------------------------------------------------------------------------

    def write(self, event: Event) -> None:
        """Report ``event`` with ReportActionStatus; raise :class:`TransportError` if not delivered.

        NOT_FOUND, INVALID_ARGUMENT and UNIMPLEMENTED are not retryable; everything else is.
        """
        plan = self._plan
        current = plan is not None and self._is_planned(plan, event.action)
        if event.state is State.RUNNING and current and plan is not None and plan.running_reported:
            return  # the server shows this action RUNNING already; a second RUNNING would skip it
        what = f"ReportActionStatus {event.state.value} for {event.action.label}"
        future = self._connection.stubs.workflow.ReportActionStatus.future(
            status_message(event, self._worker_id or self._identifier), timeout=self._call_timeout
        )
        try:
            await_report(
                future,
                what,
                cancelled=self._cancelled,
                grace=self._report_grace,
                connection=self._connection,
                target=self._target,
                tls=self._tls,
            )
        except TransportError as error:
            if not error.retryable:
                self._after_undelivered(event)
            raise
        if current and plan is not None:
            self._after_delivered(plan, event)

    def _is_planned(self, plan: _Plan, action: Action) -> bool:
        wire = plan.actions[plan.index]
        return plan.workflow_id == action.workflow_id and (wire.task_name, wire.name) == (
            action.task_id,
            action.name,
        )

    def _after_delivered(self, plan: _Plan, event: Event) -> None:
        if event.state is State.RUNNING:
            plan.running_reported = True
        elif event.state is State.SUCCESS:
            plan.index += 1
            plan.running_reported = False
        else:
            self._stop_workflow(event.action.workflow_id)

    def _after_undelivered(self, event: Event) -> None:
        """A report the server will never take: ask it again where the workflow stands."""
        self._plan = None
        if event.state.is_final and event.state is not State.SUCCESS:
            self._stop_workflow(event.action.workflow_id)

    def _stop_workflow(self, workflow_id: str) -> None:
        self._stopped.add(workflow_id)
        self._plan = None

    def close(self) -> None:
        """Close the channel (cancelling any call still in flight)."""
        self._connection.close()


def status_message(event: Event, worker_id: str) -> pb.WorkflowActionStatus:
    """The v1 ``WorkflowActionStatus`` for ``event``: whole ``seconds``, ``message``, ``created_at``."""
    action = event.action
    duration = event.duration
    created = event.stopped_at or event.started_at or dt.datetime.now(dt.UTC)
    message = event.message or ("started" if event.state is State.RUNNING else "")
    status = pb.WorkflowActionStatus(
        workflow_id=action.workflow_id,
        task_name=action.task_id,
        action_name=action.name,
        action_status=V1_STATES[event.state],
        seconds=int(duration.total_seconds()) if duration is not None and event.state.is_final else 0,
        message=message,
        worker_id=worker_id,
    )
    status.created_at.CopyFrom(timestamp(created))
    return status



def legacy_from_settings(settings: Any) -> GrpcV1Transport:
    """The v1-legacy transport from a transport-settings object (a factory for registration)."""
    return GrpcV1Transport.from_settings(settings, legacy=True)
