"""An in-process Tink server speaking the v2, v1 or v1-legacy protocol, for tests and demos.

It serves one or more :class:`~tinklet_core.workflow.Workflow` objects to one agent on a
loopback port and records every status report, behaving like the upstream Tink server of the
chosen generation as PROTOCOL.md describes it. It speaks one ``protocol`` at a time, so every
other method is answered UNIMPLEMENTED, as a real server of that generation would.

v2 (``protocol="v2"``, the default):

- GetAction with an empty ``agent_id`` → INVALID_ARGUMENT; another agent, or no workflow →
  NOT_FOUND; no workflow pending or running any more (all done, or one failed) →
  FAILED_PRECONDITION. Otherwise the first action of the first unfinished workflow that has
  no final state yet — so an action reported RUNNING (or not at all) is served again.
- ReportActionStatus without ``workflow_id``, ``task_id`` or ``action_id`` (or with state
  UNSPECIFIED) → INVALID_ARGUMENT; an unknown action or another agent → NOT_FOUND. A
  non-SUCCESS state becomes the workflow's state (FAILED/TIMEOUT end it); SUCCESS of its last
  outstanding action ends it with SUCCESS.

v1 (``protocol="v1"``: ``proto.WorkflowService``; ``"v1-legacy"``: the same methods under
``github.com.tinkerbell.tink.protos.workflow.WorkflowService`` plus HardwareService ByMAC/ByIP):

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
- v1-legacy ByMAC / ByIP look the ``hardware`` map up (MAC or IP → hardware id, which is the
  worker id of that server's workflows); an unknown one → UNKNOWN, as upstream's empty JSON.

The pid namespace is sent in both ``namespaces.pid`` and the deprecated ``pid`` field, or, with
``legacy_pid=True``, only in ``pid`` (like older servers). An action's ``retries`` is not part
of the protocol and is not sent.

Example::

    workflow = parse_workflow(yaml.safe_load(TEXT), agent_id="agent-1")
    with TinkServer([workflow], "agent-1") as server:
        run_worker_against(server.address)
        assert server.wait_until(lambda: server.workflow_state(workflow.workflow_id).is_final, 10)
        assert server.states_of("provision/hello") == [State.RUNNING, State.SUCCESS]

From a shell (prints each report; Ctrl-C stops it)::

    python -m tinklet_core.testing.tink_server WORKFLOW.yaml --agent ID [--port 42113]
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import grpc
from google.protobuf import json_format

from tinklet_core.errors import TinkletError
from tinklet_core.model import Action, State, Volume
from tinklet_core.protocol import tink_v1_hardware_pb2 as hw_pb
from tinklet_core.protocol import tink_v1_hardware_pb2_grpc as hw_grpc
from tinklet_core.protocol import tink_v1_workflow_pb2 as v1_pb
from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2_grpc as pb_grpc
from tinklet_core.protocol.tink_v1_services import V1_LEGACY_SERVICE, V1_SERVICE, service_handler
from tinklet_core.workflow import Workflow, load_workflow

_StateType = pb.ActionStatusRequest.StateType
_STATES: dict[int, State] = {
    _StateType.PENDING: State.PENDING,
    _StateType.RUNNING: State.RUNNING,
    _StateType.SUCCESS: State.SUCCESS,
    _StateType.FAILED: State.FAILED,
    _StateType.TIMEOUT: State.TIMEOUT,
}
_V1_STATES: dict[v1_pb.State, State] = {
    v1_pb.STATE_PENDING: State.PENDING,
    v1_pb.STATE_RUNNING: State.RUNNING,
    v1_pb.STATE_SUCCESS: State.SUCCESS,
    v1_pb.STATE_FAILED: State.FAILED,
    v1_pb.STATE_TIMEOUT: State.TIMEOUT,
}
_V1_WIRE_STATES = {state: number for number, state in _V1_STATES.items()}
PROTOCOLS = ("v2", "v1", "v1-legacy")
"""The protocols the test server can speak."""
DEFAULT_CLI_PORT = 42113
"""The port the command-line server listens on unless told otherwise (the Tink server's own)."""


@dataclass(frozen=True)
class ServerTls:
    """TLS for the test server: its certificate chain and key, and optionally a client CA.

    With ``client_ca`` set, clients must present a certificate signed by it (mTLS).
    """

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: Path, key: Path, client_ca: Path | None = None) -> ServerTls:
        """Read the PEM files (for instance those of :func:`~tinklet_core.testing.certs.make_test_pki`)."""
        return cls(
            cert_chain=Path(cert).read_bytes(),
            private_key=Path(key).read_bytes(),
            client_ca=Path(client_ca).read_bytes() if client_ca is not None else None,
        )


@dataclass(frozen=True)
class Report:
    """One status report the server accepted.

    ``execution_start``/``execution_stop`` are what the worker sent (timezone-aware UTC, or None
    when unsent); ``received_at`` is when this server received the report (UTC). A v1 report
    has no action id: ``action_id`` is ``TASK/ACTION``, ``agent_id`` the ``worker_id`` sent,
    ``seconds`` and ``created_at`` what it carried, and no execution times or duration.
    """

    workflow_id: str
    task_id: str
    action_id: str
    action_name: str
    state: State
    message: str
    execution_start: dt.datetime | None
    execution_stop: dt.datetime | None
    duration: str
    agent_id: str
    received_at: dt.datetime
    seconds: int | None = None
    created_at: dt.datetime | None = None


@dataclass
class _Run:
    """The server-side progress of one workflow (private to one server instance)."""

    workflow: Workflow
    state: State = State.PENDING
    finals: dict[str, State] = field(default_factory=dict)
    # v1's context: the current action (index, name; "" before the first report) and its state.
    index: int = 0
    current: str = ""
    current_state: State = State.PENDING

    def next_action(self) -> Action | None:
        return next((a for a in self.workflow.actions if a.action_id not in self.finals), None)

    def find(self, action_id: str) -> Action | None:
        return next((a for a in self.workflow.actions if a.action_id == action_id), None)

    def v1_context(self) -> v1_pb.WorkflowContext:
        actions = self.workflow.actions
        return v1_pb.WorkflowContext(
            workflow_id=self.workflow.workflow_id,
            current_worker=actions[self.index].agent_id if actions else "",
            current_task=actions[self.index].task_id if self.current and actions else "",
            current_action=self.current,
            current_action_index=self.index,
            current_action_state=_V1_WIRE_STATES[self.current_state],
            total_number_of_actions=len(actions),
        )

    def v1_next(self) -> int | None:
        """The index the context points a worker at (as the worker works it out), if any."""
        if self.current_state in (State.FAILED, State.TIMEOUT):
            return None
        index = self.index + (1 if self.current_state is State.SUCCESS else 0)
        return index if index < len(self.workflow.actions) else None

    def v1_applicable(self, worker_id: str) -> bool:
        """Upstream's isApplicableToSend (quirk included: after a SUCCESS, only at index 0)."""
        actions = self.workflow.actions
        if self.current_state in (State.FAILED, State.TIMEOUT) or not actions:
            return False
        if self.current_state is State.SUCCESS:
            if self.index == len(actions) - 1 or self.index != 0:
                return False
            return actions[1].agent_id == worker_id
        return actions[self.index].agent_id == worker_id

    def record(self, action_id: str, state: State) -> None:
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


@dataclass
class _Refusal:
    """What to do with the next ``remaining`` matching reports: answer ``code``, or, with
    ``code`` None, hang (answer nothing until the client gives up or the server stops)."""

    remaining: int
    code: grpc.StatusCode | None
    final_only: bool


@dataclass(frozen=True)
class Call:
    """One call the server received: the method's name and when (``time.monotonic()``)."""

    method: str
    at: float


class TinkServer:
    """A v2 Tink server on ``host`` (loopback) serving ``workflows`` to the agent ``agent_id``.

    ``port`` 0 picks a free port (kept for a restart: :meth:`start` after :meth:`stop` listens
    on the same port again, with the same state); :meth:`start` returns the address to dial.
    :attr:`calls` records when each call arrived. ``tls`` turns on
    TLS (and mTLS when it has a client CA). ``get_action_delay`` holds every GetAction call that
    many seconds before answering, like a server that retries internally (the wait ends early
    when the client gives up). ``on_report`` is called, from a server thread, with each accepted
    :class:`Report`. Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        workflows: Workflow | Iterable[Workflow],
        agent_id: str,
        *,
        tls: ServerTls | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        get_action_delay: float = 0.0,
        legacy_pid: bool = False,
        on_report: Callable[[Report], None] | None = None,
        protocol: str = "v2",
        hardware: dict[str, str] | None = None,
        filter_contexts: bool = True,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        runs = [_Run(w) for w in ([workflows] if isinstance(workflows, Workflow) else workflows)]
        ids = [run.workflow.workflow_id for run in runs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"workflow ids must be unique, got {ids}")
        self.agent_id = agent_id
        self.get_action_delay = get_action_delay
        self._runs = runs
        self._tls = tls
        self._host = host
        self._port = port
        self._legacy_pid = legacy_pid
        self._on_report = on_report
        self.protocol = protocol
        self._hardware = dict(hardware or {})
        self._filter_contexts = filter_contexts
        self._changed = threading.Condition(threading.RLock())
        self._reports: list[Report] = []
        self._served: list[str] = []
        self._agent_attributes: list[dict[str, Any]] = []
        self._calls: list[Call] = []
        self._refusal: _Refusal | None = None
        self._stopping = threading.Event()
        self._server: grpc.Server | None = None
        self._address = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; return the address ``HOST:PORT`` to dial."""
        if self._server is not None:
            return self._address
        self._stopping.clear()
        server = grpc.server(ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)])
        if self.protocol == "v2":
            pb_grpc.add_WorkflowServiceServicer_to_server(_Servicer(self), server)
        else:
            legacy = self.protocol == "v1-legacy"
            service = V1_LEGACY_SERVICE if legacy else V1_SERVICE
            server.add_generic_rpc_handlers((service_handler(_V1Servicer(self), service),))
            if legacy:
                hw_grpc.add_HardwareServiceServicer_to_server(_HardwareServicer(self), server)
        bind = f"[{self._host}]:{self._port}" if ":" in self._host else f"{self._host}:{self._port}"
        try:
            if self._tls is None:
                port = server.add_insecure_port(bind)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(self._tls.private_key, self._tls.cert_chain)],
                    root_certificates=self._tls.client_ca,
                    require_client_auth=self._tls.client_ca is not None,
                )
                port = server.add_secure_port(bind, credentials)
        except RuntimeError:
            port = 0
        if not port:
            raise OSError(f"test Tink server cannot listen on {bind}")
        server.start()
        self._server = server
        self._port = port  # a restart listens here again
        self._address = bind.rsplit(":", 1)[0] + f":{port}"
        return self._address

    def stop(self) -> None:
        """Stop serving; calls in flight are cancelled. Safe to call twice."""
        self._stopping.set()
        if self._server is not None:
            self._server.stop(grace=0).wait(5)
            self._server = None

    def __enter__(self) -> TinkServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``HOST:PORT`` once started, else an empty string."""
        return self._address

    # -- what happened -------------------------------------------------------------------------

    @property
    def reports(self) -> list[Report]:
        """Every accepted report, in the order received (a copy)."""
        with self._changed:
            return list(self._reports)

    @property
    def served(self) -> list[str]:
        """The action ids handed out, in order (a copy): by GetAction (v2), or pointed at by a streamed
        context (v1; a worker goes on from its action list without asking, so later actions of a
        workflow may not appear)."""
        with self._changed:
            return list(self._served)

    @property
    def agent_attributes(self) -> list[dict[str, Any]]:
        """The ``agent_attributes`` of every v2 GetAction received, in order, as dicts keyed by
        proto field name (``{}`` for a request that carried none)."""
        with self._changed:
            return [dict(entry) for entry in self._agent_attributes]

    @property
    def calls(self) -> list[Call]:
        """Every call received (any method, answered or not), in order of arrival (a copy)."""
        with self._changed:
            return list(self._calls)

    def states_of(self, action_id: str) -> list[State]:
        """The states reported for ``action_id``, in order."""
        with self._changed:
            return [r.state for r in self._reports if r.action_id == action_id]

    def workflow_state(self, workflow_id: str) -> State:
        """The workflow's state as the server sees it (PENDING until its first report)."""
        with self._changed:
            for run in self._runs:
                if run.workflow.workflow_id == workflow_id:
                    return run.state
        raise KeyError(workflow_id)

    @property
    def all_finished(self) -> bool:
        """True when every workflow has ended (SUCCESS, FAILED or TIMEOUT)."""
        with self._changed:
            return all(run.state.is_final for run in self._runs)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` is true, re-checking after every call, served action and report.

        Returns False if it is still false after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # -- steering ----------------------------------------------------------------------------

    def refuse_reports(
        self, count: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, *, final_only: bool = True
    ) -> None:
        """Answer the next ``count`` matching reports with ``code`` and do not record them.

        With ``final_only`` (the default) only SUCCESS/FAILED/TIMEOUT reports match; other
        reports are accepted as usual. A new call replaces what is left of an earlier one.
        """
        with self._changed:
            self._refusal = _Refusal(count, code, final_only) if count > 0 else None

    def hang_reports(self, count: int, *, final_only: bool = True) -> None:
        """Answer nothing to the next ``count`` matching reports and do not record them: each call
        is held until the client gives up (its deadline, a cancel) or the server stops, like a
        server stuck on its database. ``final_only`` as for :meth:`refuse_reports`, which this
        replaces (and which replaces this)."""
        with self._changed:
            self._refusal = _Refusal(count, None, final_only) if count > 0 else None

    def add_hardware(self, key: str, hardware_id: str) -> None:
        """Make v1-legacy's ByMAC/ByIP know ``key`` (a MAC or an IP) as ``hardware_id`` from now on."""
        with self._changed:
            self._hardware[key] = hardware_id

    def seed_progress(self, workflow_id: str, action_id: str, state: State) -> None:
        """Start as if an earlier worker had run every action before ``action_id`` (SUCCESS) and
        then reported ``state`` for it — a worker restarted mid-workflow. Records no reports."""
        with self._changed:
            run = next(r for r in self._runs if r.workflow.workflow_id == workflow_id)
            ids = [a.action_id for a in run.workflow.actions]
            index = ids.index(action_id)
            for earlier in ids[:index]:
                run.record(earlier, State.SUCCESS)
            run.record(action_id, state)
            run.index, run.current, run.current_state = index, run.workflow.actions[index].name, state

    # -- the RPCs (called by _Servicer) -------------------------------------------------------

    def _get_action(self, request: pb.ActionRequest, context: grpc.ServicerContext) -> pb.ActionResponse:
        self._hold(context)
        with self._changed:
            self._agent_attributes.append(
                json_format.MessageToDict(request.agent_attributes, preserving_proto_field_name=True)
            )
        if not request.agent_id:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "agent_id is required")
        with self._changed:
            if request.agent_id != self.agent_id or not self._runs:
                _abort(context, grpc.StatusCode.NOT_FOUND, f"no workflow for agent {request.agent_id}")
            for run in self._runs:
                if run.state.is_final:
                    continue
                action = run.next_action()
                if action is None:
                    continue
                if not context.is_active():
                    _abort(context, grpc.StatusCode.CANCELLED, "the client went away")
                self._served.append(action.action_id)
                self._changed.notify_all()
                return self._response(action)
        _abort(
            context, grpc.StatusCode.FAILED_PRECONDITION, "no workflow of this agent is pending or running"
        )

    def _report(
        self, request: pb.ActionStatusRequest, context: grpc.ServicerContext
    ) -> pb.ActionStatusResponse:
        missing = [name for name in ("workflow_id", "task_id", "action_id") if not getattr(request, name)]
        if missing:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"missing {', '.join(missing)}")
        state = _STATES.get(request.action_state)
        if state is None:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "action_state is UNSPECIFIED")
        report = _report_from(request, state)
        with self._changed:
            run = self._run_of(request.workflow_id, request.action_id)
            if run is None or request.agent_id != self.agent_id:
                _abort(context, grpc.StatusCode.NOT_FOUND, f"no action {request.action_id} for this agent")
            refusal = self._take_refusal(state)
            if refusal is None:
                self._accept(run, report)
        if refusal is not None:
            self._refuse(context, refusal)
        if self._on_report is not None:
            self._on_report(report)
        return pb.ActionStatusResponse()

    def _take_refusal(self, state: State) -> _Refusal | None:
        """How to refuse a report in ``state`` (using one refusal up), else None."""
        refusal = self._refusal
        if refusal is None or not (state.is_final or not refusal.final_only):
            return None
        refusal.remaining -= 1
        if refusal.remaining <= 0:
            self._refusal = None
        return refusal

    def _refuse(self, context: grpc.ServicerContext, refusal: _Refusal) -> NoReturn:
        """Answer a refused report with its code, or hang until the client or the server gives up."""
        if refusal.code is not None:
            _abort(context, refusal.code, "report refused by the test server")
        while context.is_active() and not self._stopping.wait(0.05):
            pass
        _abort(context, grpc.StatusCode.UNAVAILABLE, "the test server is stopping")

    def _called(self, method: str) -> None:
        with self._changed:
            self._calls.append(Call(method, time.monotonic()))
            self._changed.notify_all()

    def _accept(self, run: _Run, report: Report) -> None:
        self._reports.append(report)
        run.record(report.action_id, report.state)
        self._changed.notify_all()

    # -- v1 ----------------------------------------------------------------------------------

    def _v1_contexts(
        self, request: v1_pb.WorkflowContextRequest, context: grpc.ServicerContext
    ) -> list[v1_pb.WorkflowContext]:
        if not request.worker_id:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "worker_id is invalid")
        answers = []
        with self._changed:
            for run in self._runs:
                actions = run.workflow.actions
                if not any(a.agent_id == request.worker_id for a in actions):
                    continue
                if self._filter_contexts and not run.v1_applicable(request.worker_id):
                    continue
                answers.append(run.v1_context())
                index = run.v1_next()
                if index is not None and actions[index].agent_id == request.worker_id:
                    self._served.append(actions[index].action_id)
            self._changed.notify_all()
        return answers

    def _v1_actions(
        self, request: v1_pb.WorkflowActionsRequest, context: grpc.ServicerContext
    ) -> v1_pb.WorkflowActionList:
        if not request.workflow_id:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "workflow_id is invalid")
        run = self._run_named(request.workflow_id)
        if run is None:
            _abort(context, grpc.StatusCode.ABORTED, "workflow_id is invalid")
        return v1_pb.WorkflowActionList(action_list=[self._v1_action(a) for a in run.workflow.actions])

    def _v1_report(self, request: v1_pb.WorkflowActionStatus, context: grpc.ServicerContext) -> v1_pb.Empty:
        for name in ("workflow_id", "task_name", "action_name"):
            if not getattr(request, name):
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"{name} is invalid")
        state = _V1_STATES[request.action_status]
        with self._changed:
            run = self._run_named(request.workflow_id)
            if run is None:
                _abort(context, grpc.StatusCode.NOT_FOUND, f"no workflow {request.workflow_id}")
            actions = run.workflow.actions
            index = run.index + (1 if state is State.RUNNING and run.current else 0)
            if index >= len(actions):
                _abort(context, grpc.StatusCode.FAILED_PRECONDITION, "invalid action index")
            action = actions[index]
            if (action.task_id, action.name) != (request.task_name, request.action_name):
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "reported action is not the current action")
            refusal = self._take_refusal(state)
            if refusal is None:
                run.index, run.current, run.current_state = index, action.name, state
                report = Report(
                    workflow_id=request.workflow_id,
                    task_id=request.task_name,
                    action_id=action.action_id,
                    action_name=request.action_name,
                    state=state,
                    message=request.message,
                    execution_start=None,
                    execution_stop=None,
                    duration="",
                    agent_id=request.worker_id,
                    received_at=dt.datetime.now(dt.UTC),
                    seconds=int(request.seconds),
                    created_at=_time(request, "created_at"),
                )
                self._accept(run, report)
        if refusal is not None:
            self._refuse(context, refusal)
        if self._on_report is not None:
            self._on_report(report)
        return v1_pb.Empty()

    def _by(self, key: str, context: grpc.ServicerContext) -> hw_pb.Hardware:
        with self._changed:
            hardware_id = self._hardware.get(key) if key else None
        if hardware_id is None:
            _abort(context, grpc.StatusCode.UNKNOWN, "unexpected end of JSON input")
        return hw_pb.Hardware(id=hardware_id)

    def _run_named(self, workflow_id: str) -> _Run | None:
        return next((run for run in self._runs if run.workflow.workflow_id == workflow_id), None)

    def _v1_action(self, action: Action) -> v1_pb.WorkflowAction:
        return v1_pb.WorkflowAction(
            task_name=action.task_id,
            name=action.name,
            image=action.image,
            timeout=action.timeout,
            command=list(action.command),
            worker_id=action.agent_id,
            volumes=[_volume_text(volume) for volume in action.volumes],
            environment=[f"{key}={value}" for key, value in action.env],
            pid=action.pid_namespace,
        )

    def _hold(self, context: grpc.ServicerContext) -> None:
        """Wait ``get_action_delay`` seconds, or less if the client or the server gives up."""
        deadline = time.monotonic() + self.get_action_delay
        while (remaining := deadline - time.monotonic()) > 0 and context.is_active():
            if self._stopping.wait(min(remaining, 0.05)):
                _abort(context, grpc.StatusCode.UNAVAILABLE, "the test server is stopping")

    def _run_of(self, workflow_id: str, action_id: str) -> _Run | None:
        """The run holding ``action_id``; the one named ``workflow_id`` first (v2 matches on ids)."""
        ordered = sorted(self._runs, key=lambda run: run.workflow.workflow_id != workflow_id)
        return next((run for run in ordered if run.find(action_id) is not None), None)

    def _response(self, action: Action) -> pb.ActionResponse:
        return pb.ActionResponse(
            workflow_id=action.workflow_id,
            task_id=action.task_id,
            agent_id=self.agent_id,
            action_id=action.action_id,
            name=action.name,
            image=action.image,
            timeout=action.timeout,
            command=list(action.command),
            volumes=[_volume_text(volume) for volume in action.volumes],
            environment=[f"{key}={value}" for key, value in action.env],
            pid=action.pid_namespace,
            namespaces=pb.Namespaces(
                network=action.network_namespace,
                pid="" if self._legacy_pid else action.pid_namespace,
            ),
        )


class _V1Servicer:
    """Routes the v1 calls (under either service name) to the owning :class:`TinkServer`."""

    def __init__(self, owner: TinkServer) -> None:
        self._owner = owner

    def GetWorkflowContexts(
        self, request: v1_pb.WorkflowContextRequest, context: grpc.ServicerContext
    ) -> Iterator[v1_pb.WorkflowContext]:
        self._owner._called("GetWorkflowContexts")
        yield from self._owner._v1_contexts(request, context)

    def GetWorkflowActions(
        self, request: v1_pb.WorkflowActionsRequest, context: grpc.ServicerContext
    ) -> v1_pb.WorkflowActionList:
        self._owner._called("GetWorkflowActions")
        return self._owner._v1_actions(request, context)

    def ReportActionStatus(
        self, request: v1_pb.WorkflowActionStatus, context: grpc.ServicerContext
    ) -> v1_pb.Empty:
        self._owner._called("ReportActionStatus")
        return self._owner._v1_report(request, context)


class _HardwareServicer(hw_grpc.HardwareServiceServicer):
    """v1-legacy's HardwareService: ByMAC / ByIP from the owner's hardware map."""

    def __init__(self, owner: TinkServer) -> None:
        self._owner = owner

    def ByMAC(self, request: hw_pb.GetRequest, context: grpc.ServicerContext) -> hw_pb.Hardware:
        self._owner._called("ByMAC")
        return self._owner._by(request.mac, context)

    def ByIP(self, request: hw_pb.GetRequest, context: grpc.ServicerContext) -> hw_pb.Hardware:
        self._owner._called("ByIP")
        return self._owner._by(request.ip, context)


class _Servicer(pb_grpc.WorkflowServiceServicer):
    """Routes the generated service's calls to the owning :class:`TinkServer`."""

    def __init__(self, owner: TinkServer) -> None:
        self._owner = owner

    def GetAction(self, request: pb.ActionRequest, context: grpc.ServicerContext) -> pb.ActionResponse:
        self._owner._called("GetAction")
        return self._owner._get_action(request, context)

    def ReportActionStatus(
        self, request: pb.ActionStatusRequest, context: grpc.ServicerContext
    ) -> pb.ActionStatusResponse:
        self._owner._called("ReportActionStatus")
        return self._owner._report(request, context)


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


def _report_from(request: pb.ActionStatusRequest, state: State) -> Report:
    return Report(
        workflow_id=request.workflow_id,
        task_id=request.task_id,
        action_id=request.action_id,
        action_name=request.action_name,
        state=state,
        message=request.message.message,
        execution_start=_time(request, "execution_start"),
        execution_stop=_time(request, "execution_stop"),
        duration=request.execution_duration,
        agent_id=request.agent_id,
        received_at=dt.datetime.now(dt.UTC),
    )


def _time(request: Any, name: str) -> dt.datetime | None:
    if not request.HasField(name):
        return None
    moment: dt.datetime = getattr(request, name).ToDatetime(tzinfo=dt.UTC)
    return moment


def _volume_text(volume: Volume) -> str:
    return f"{volume.source}:{volume.target}" + (":ro" if volume.read_only else "")


# -- command line ------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tinklet_core.testing.tink_server",
        description="Serve workflow files to one agent over a Tink protocol and print each report.",
    )
    parser.add_argument("workflows", nargs="+", type=Path, metavar="WORKFLOW.yaml")
    parser.add_argument("--agent", required=True, help="the agent id (tinklet's --identifier)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_CLI_PORT,
        help=f"default {DEFAULT_CLI_PORT} (the Tink server's); 0 picks a free port",
    )
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM); turns TLS on")
    parser.add_argument("--tls-key", type=Path, help="server key (PEM)")
    parser.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="v2", help="protocol to speak (default v2)")
    parser.add_argument(
        "--hardware",
        action="append",
        default=[],
        metavar="MAC_OR_IP=ID",
        help="v1-legacy: ByMAC/ByIP answer ID for this MAC or IP (repeatable)",
    )
    parser.add_argument("--delay", type=float, default=0.0, help="hold each GetAction this many seconds")
    parser.add_argument(
        "--hang-reports",
        type=int,
        default=0,
        metavar="N",
        help="answer nothing to the first N final reports (until the worker gives up), to try a stop",
    )
    parser.add_argument(
        "--exit-when-done",
        action="store_true",
        help="exit once every workflow has ended: status 0 if all succeeded, else 1",
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    if any("=" not in entry for entry in args.hardware):
        parser.error("--hardware takes MAC_OR_IP=ID")
    return args


def _print_report(report: Report) -> None:
    when = (report.execution_stop or report.execution_start or dt.datetime.now(dt.UTC)).strftime("%H:%M:%S")
    line = f"{when} {report.workflow_id} {report.action_id} {report.state.value}"
    if report.duration:
        line += f" ({report.duration})"
    elif report.seconds and report.state.is_final:
        line += f" ({report.seconds}s)"
    if report.message:
        line += ": " + " | ".join(report.message.splitlines())
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the test server in the foreground until Ctrl-C (or until done with --exit-when-done)."""
    args = _parse_args(argv)
    try:
        workflows = [load_workflow(path, agent_id=args.agent) for path in args.workflows]
        tls = ServerTls.from_files(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    except (TinkletError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    server = TinkServer(
        workflows, args.agent, tls=tls, host=args.host, port=args.port,
        get_action_delay=args.delay, on_report=_print_report, protocol=args.protocol,
        hardware=dict(entry.split("=", 1) for entry in args.hardware),
    )  # fmt: skip
    server.hang_reports(args.hang_reports)
    try:
        address = server.start()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = ", ".join(w.workflow_id for w in workflows)
    notes = ", ".join([args.protocol] * (args.protocol != "v2") + ["TLS"] * (tls is not None))
    print(f"serving {names} to agent {args.agent} on {address}{f' ({notes})' if notes else ''}", flush=True)
    try:
        while not stop.wait(0.2):
            if args.exit_when_done and server.all_finished:
                break
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    if args.exit_when_done and server.all_finished:
        return 0 if all(server.workflow_state(w.workflow_id) is State.SUCCESS for w in workflows) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
