"""The in-process test Tink server: its lifecycle, what it saw, and how a test steers it.

The protocol it speaks lives in one module per generation (:mod:`.v2`, :mod:`.v1`,
:mod:`.v1_legacy`), the faults it can inject in :mod:`.faults`; all of them share one
:class:`~tinklet_core.testing.tink_server.state.ServerState`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

import grpc

from tinklet_core.model import State
from tinklet_core.testing.tink_server.records import PROTOCOLS, Call, Report, ServerTls
from tinklet_core.testing.tink_server.state import ServerState, WorkflowRun
from tinklet_core.testing.tink_server.v1 import add_v1_service
from tinklet_core.testing.tink_server.v1_legacy import add_v1_legacy_services
from tinklet_core.testing.tink_server.v2 import add_v2_service
from tinklet_core.workflow import Workflow


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
        runs = [WorkflowRun(w) for w in ([workflows] if isinstance(workflows, Workflow) else workflows)]
        ids = [run.workflow.workflow_id for run in runs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"workflow ids must be unique, got {ids}")
        self.protocol = protocol
        self._state = ServerState(
            runs,
            agent_id,
            get_action_delay=get_action_delay,
            legacy_pid=legacy_pid,
            on_report=on_report,
            hardware=dict(hardware or {}),
            filter_contexts=filter_contexts,
        )
        self._changed = self._state.changed
        self._tls = tls
        self._host = host
        self._port = port
        self._server: grpc.Server | None = None
        self._address = ""

    @property
    def agent_id(self) -> str:
        """The agent this server serves."""
        return self._state.agent_id

    @property
    def get_action_delay(self) -> float:
        """Seconds every GetAction is held before its answer (may be changed while serving)."""
        return self._state.get_action_delay

    @get_action_delay.setter
    def get_action_delay(self, seconds: float) -> None:
        self._state.get_action_delay = seconds

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; return the address ``HOST:PORT`` to dial."""
        if self._server is not None:
            return self._address
        self._state.stopping.clear()
        server = grpc.server(ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)])
        if self.protocol == "v2":
            add_v2_service(server, self._state)
        elif self.protocol == "v1":
            add_v1_service(server, self._state)
        else:
            add_v1_legacy_services(server, self._state)
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
        self._state.stopping.set()
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
            return list(self._state.reports)

    @property
    def served(self) -> list[str]:
        """The action ids handed out, in order (a copy): by GetAction (v2), or pointed at by a streamed
        context (v1; a worker goes on from its action list without asking, so later actions of a
        workflow may not appear)."""
        with self._changed:
            return list(self._state.served)

    @property
    def agent_attributes(self) -> list[dict[str, Any]]:
        """The ``agent_attributes`` of every v2 GetAction received, in order, as dicts keyed by
        proto field name (``{}`` for a request that carried none)."""
        with self._changed:
            return [dict(entry) for entry in self._state.agent_attributes]

    @property
    def calls(self) -> list[Call]:
        """Every call received (any method, answered or not), in order of arrival (a copy)."""
        with self._changed:
            return list(self._state.calls)

    def states_of(self, action_id: str) -> list[State]:
        """The states reported for ``action_id``, in order."""
        with self._changed:
            return [r.state for r in self._state.reports if r.action_id == action_id]

    def workflow_state(self, workflow_id: str) -> State:
        """The workflow's state as the server sees it (PENDING until its first report)."""
        with self._changed:
            for run in self._state.runs:
                if run.workflow.workflow_id == workflow_id:
                    return run.state
        raise KeyError(workflow_id)

    @property
    def all_finished(self) -> bool:
        """True when every workflow has ended (SUCCESS, FAILED or TIMEOUT)."""
        with self._changed:
            return all(run.state.is_final for run in self._state.runs)

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
            self._state.faults.arm(count, code, final_only)

    def hang_reports(self, count: int, *, final_only: bool = True) -> None:
        """Answer nothing to the next ``count`` matching reports and do not record them: each call
        is held until the client gives up (its deadline, a cancel) or the server stops, like a
        server stuck on its database. ``final_only`` as for :meth:`refuse_reports`, which this
        replaces (and which replaces this)."""
        with self._changed:
            self._state.faults.arm(count, None, final_only)

    def add_hardware(self, key: str, hardware_id: str) -> None:
        """Make v1-legacy's ByMAC/ByIP know ``key`` (a MAC or an IP) as ``hardware_id`` from now on."""
        with self._changed:
            self._state.hardware[key] = hardware_id

    def seed_progress(self, workflow_id: str, action_id: str, state: State) -> None:
        """Start as if an earlier worker had run every action before ``action_id`` (SUCCESS) and
        then reported ``state`` for it — a worker restarted mid-workflow. Records no reports."""
        with self._changed:
            run = next(r for r in self._state.runs if r.workflow.workflow_id == workflow_id)
            ids = [a.action_id for a in run.workflow.actions]
            index = ids.index(action_id)
            for earlier in ids[:index]:
                run.record(earlier, State.SUCCESS)
            run.record(action_id, state)
            run.index, run.current, run.current_state = index, run.workflow.actions[index].name, state
