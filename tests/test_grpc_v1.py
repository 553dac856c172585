"""GrpcV1Transport (v1 and v1-legacy) and AutoTransport against the in-process test Tink server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from tinklet_core.errors import TransportError
from tinklet_core.model import Action, Event, State
from tinklet_core.testing.certs import make_test_pki
from tinklet_core.testing.tink_server import ServerTls, TinkServer
from tinklet_core.transports.auto import AutoTransport
from tinklet_core.transports.grpc_common import UnsupportedProtocol
from tinklet_core.transports.grpc_v1 import GrpcV1Transport, hardware_lookup, legacy_from_settings
from tinklet_core.transports.grpc_v2 import GrpcV2Transport
from tinklet_core.workflow import Workflow, parse_workflow

AGENT = "worker-v1"
MAC = "02:42:ac:11:00:07"
HARDWARE_ID = "0eba0bf8-3772-4b4a-ab9f-6ebe93b90a94"
T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def make_workflow(name: str = "wf", *actions: str, agent: str = AGENT) -> Workflow:
    names = actions or ("one", "two", "three")
    data = {"name": name, "tasks": [{"name": "t", "actions": [
        {"name": a, "image": "img", "command": ["echo", a], "environment": {"K": f"v {a}"}} for a in names
    ]}]}  # fmt: skip
    return parse_workflow(data, agent_id=agent)


def v1_transport(server: TinkServer, identifier: str = AGENT, **options: object) -> GrpcV1Transport:
    options.setdefault("cancelled", threading.Event())
    options.setdefault("call_timeout", 10.0)
    return GrpcV1Transport(server.address, identifier, **options)  # type: ignore[arg-type]


def run(transport: GrpcV1Transport | AutoTransport, state: State = State.SUCCESS) -> Action:
    """Read the next action and report RUNNING and then ``state`` for it, as the worker does."""
    action = transport.read()
    assert action is not None, "no action was handed out"
    transport.write(Event(action, State.RUNNING, started_at=T0))
    transport.write(Event(action, state, T0, T0 + dt.timedelta(seconds=63), message=f"{state.value} here"))
    return action


@pytest.fixture
def server() -> Iterator[TinkServer]:
    with TinkServer([make_workflow()], AGENT, protocol="v1") as running:
        yield running


@pytest.fixture
def transport(server: TinkServer) -> Iterator[GrpcV1Transport]:
    client = v1_transport(server)
    try:
        yield client
    finally:
        client.close()


def test_runs_the_workflow_in_order_with_running_and_final_reports(
    server: TinkServer, transport: GrpcV1Transport
) -> None:
    first = run(transport)
    assert (first.workflow_id, first.task_id, first.action_id, first.name) == ("wf", "t", "t/one", "one")
    assert first.command == ("echo", "one") and first.env == (("K", "v one"),)
    assert first.agent_id == AGENT
    # after the second action's SUCCESS the upstream server streams no context for this workflow:
    # the transport must go on from the action list it already has
    assert [run(transport).name, run(transport).name] == ["two", "three"]
    assert transport.read() is None
    assert server.workflow_state("wf") is State.SUCCESS
    assert [(r.action_name, r.state) for r in server.reports] == [
        (name, state) for name in ("one", "two", "three") for state in (State.RUNNING, State.SUCCESS)
    ]


def test_a_report_carries_seconds_message_created_at_and_worker_id(
    server: TinkServer, transport: GrpcV1Transport
) -> None:
    run(transport)
    running, success = server.reports
    assert (running.seconds, success.seconds) == (0, 63)
    assert success.message == "SUCCESS here"
    assert success.created_at == T0 + dt.timedelta(seconds=63)
    assert running.created_at == T0
    assert {running.agent_id, success.agent_id} == {AGENT}


@pytest.mark.parametrize("final", [State.FAILED, State.TIMEOUT])
def test_a_workflow_stops_at_its_first_non_success(
    server: TinkServer, transport: GrpcV1Transport, final: State
) -> None:
    run(transport)
    run(transport, final)
    assert transport.read() is None
    assert server.workflow_state("wf") is final
    assert "t/three" not in [r.action_id for r in server.reports]


def test_a_context_showing_an_action_running_resumes_that_action(server: TinkServer) -> None:
    server.seed_progress("wf", "t/two", State.RUNNING)  # an earlier worker died running "two"
    with closing(v1_transport(server)) as transport:
        assert run(transport).name == "two"
        assert run(transport).name == "three"
    # RUNNING is not sent again for "two": upstream would count it as the start of "three"
    assert [(r.action_name, r.state) for r in server.reports] == [
        ("two", State.SUCCESS), ("three", State.RUNNING), ("three", State.SUCCESS),
    ]  # fmt: skip


def test_a_context_showing_the_last_action_success_runs_nothing() -> None:
    with TinkServer([make_workflow()], AGENT, protocol="v1", filter_contexts=False) as server:
        server.seed_progress("wf", "t/three", State.SUCCESS)
        with closing(v1_transport(server)) as transport:
            assert transport.read() is None
        assert server.reports == []


def test_an_unfiltered_context_after_a_middle_success_resumes_at_the_next_action() -> None:
    with TinkServer([make_workflow()], AGENT, protocol="v1", filter_contexts=False) as server:
        server.seed_progress("wf", "t/two", State.SUCCESS)
        with closing(v1_transport(server)) as transport:
            assert run(transport).name == "three"


def test_runs_only_this_workers_actions() -> None:
    workflow = make_workflow()
    others = tuple(
        dataclasses.replace(a, agent_id="someone-else") if a.name == "two" else a for a in workflow.actions
    )
    workflow = dataclasses.replace(workflow, tasks=(dataclasses.replace(workflow.tasks[0], actions=others),))
    with TinkServer([workflow], AGENT, protocol="v1") as server, closing(v1_transport(server)) as transport:
        assert run(transport).name == "one"
        assert transport.read() is None  # "two" is another worker's: nothing for us now
        assert [r.action_name for r in server.reports] == ["one", "one"]


def test_a_report_for_another_action_is_refused_and_not_retried(
    server: TinkServer, transport: GrpcV1Transport
) -> None:
    action = transport.read()
    assert action is not None
    wrong = dataclasses.replace(action, name="three", action_id="t/three")
    with pytest.raises(TransportError) as caught:
        transport.write(Event(wrong, State.RUNNING))
    assert not caught.value.retryable
    assert "INVALID_ARGUMENT" in str(caught.value)


def test_a_refused_final_report_is_retryable_and_does_not_move_on(
    server: TinkServer, transport: GrpcV1Transport
) -> None:
    action = transport.read()
    assert action is not None
    transport.write(Event(action, State.RUNNING))
    server.refuse_reports(1)
    final = Event(action, State.SUCCESS, T0, T0)
    with pytest.raises(TransportError) as caught:
        transport.write(final)
    assert caught.value.retryable
    transport.write(final)
    assert run(transport).name == "two"
    assert server.states_of("t/one") == [State.RUNNING, State.SUCCESS]


# -- v1-legacy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "key"),
    [(MAC, MAC), ("02-42-AC-11-00-07", MAC), ("10.0.0.7", "10.0.0.7"), ("fd00::7", "fd00::7")],
)
def test_legacy_resolves_a_mac_or_ip_to_the_hardware_id(identifier: str, key: str) -> None:
    workflow = make_workflow(agent=HARDWARE_ID)
    with TinkServer([workflow], HARDWARE_ID, protocol="v1-legacy", hardware={key: HARDWARE_ID}) as server:
        with closing(v1_transport(server, identifier, legacy=True)) as transport:
            action = run(transport)
            assert transport.worker_id == HARDWARE_ID
        assert action.agent_id == identifier  # containers are labelled with --identifier
        assert {r.agent_id for r in server.reports} == {HARDWARE_ID}


def test_legacy_waits_quietly_until_the_server_knows_the_machine() -> None:
    with (
        TinkServer([make_workflow(agent=HARDWARE_ID)], HARDWARE_ID, protocol="v1-legacy") as server,
        closing(v1_transport(server, MAC, legacy=True)) as transport,
    ):
        assert transport.read() is None  # unknown MAC: no error, ask again later
        assert transport.read() is None
        server.add_hardware(MAC, HARDWARE_ID)
        assert run(transport).name == "one"


def test_legacy_uses_any_other_identifier_as_is() -> None:
    assert hardware_lookup("worker-7") is None
    with (
        TinkServer([make_workflow(agent="worker-7")], "worker-7", protocol="v1-legacy") as server,
        closing(v1_transport(server, "worker-7", legacy=True)) as transport,
    ):
        assert run(transport).name == "one"


# -- the wrong protocol is UNIMPLEMENTED, "no work" is not --------------------------------------


@pytest.mark.parametrize(
    ("speaks", "client"), [("v2", "v1"), ("v2", "v1-legacy"), ("v1", "v1-legacy"), ("v1-legacy", "v1")]
)
def test_a_v1_client_of_another_server_gets_unsupported_protocol(speaks: str, client: str) -> None:
    with (
        TinkServer([make_workflow()], AGENT, protocol=speaks, hardware={MAC: AGENT}) as server,
        closing(v1_transport(server, MAC, legacy=client == "v1-legacy")) as transport,
        pytest.raises(UnsupportedProtocol),
    ):
        transport.read()


@pytest.mark.parametrize("speaks", ["v1", "v1-legacy"])
def test_a_v2_client_of_a_v1_server_gets_unsupported_protocol(speaks: str) -> None:
    with (
        TinkServer([make_workflow()], AGENT, protocol=speaks) as server,
        closing(GrpcV2Transport(server.address, AGENT, cancelled=threading.Event())) as transport,
        pytest.raises(UnsupportedProtocol),
    ):
        transport.read()


def test_read_gives_up_promptly_when_cancelled(server: TinkServer) -> None:
    cancelled = threading.Event()
    cancelled.set()
    with closing(v1_transport(server, cancelled=cancelled)) as transport:
        started = time.monotonic()
        assert transport.read() is None
        assert time.monotonic() - started < 0.5


# -- auto ----------------------------------------------------------------------------------------


def auto_for(address: str, identifier: str = AGENT) -> AutoTransport:
    return AutoTransport.for_server(address, identifier, cancelled=threading.Event())


@pytest.mark.parametrize("speaks", ["v2", "v1", "v1-legacy"])
def test_auto_detects_each_protocol_and_logs_it_once(speaks: str, caplog: pytest.LogCaptureFixture) -> None:
    identifier, agent = (MAC, HARDWARE_ID) if speaks == "v1-legacy" else (AGENT, AGENT)
    workflow = make_workflow(agent=agent)
    caplog.set_level(logging.INFO, logger="tinklet.transport")
    with TinkServer([workflow], agent, protocol=speaks, hardware={MAC: HARDWARE_ID}) as server:
        transport = auto_for(server.address, identifier)
        try:
            assert [run(transport).name for _ in range(3)] == ["one", "two", "three"]
            assert transport.read() is None
        finally:
            transport.close()
        assert transport.chosen == speaks
        assert server.workflow_state("wf") is State.SUCCESS
    detected = [r.getMessage() for r in caplog.records if "speaks protocol" in r.getMessage()]
    assert detected == [f"tink server {server.address} speaks protocol {speaks}"]


@pytest.mark.parametrize("workflows", ["none for this agent", "all done"])
def test_auto_takes_no_work_now_on_v2_as_v2(workflows: str) -> None:
    """NOT_FOUND (no workflow) and FAILED_PRECONDITION (none runnable) are v2 answers."""
    with TinkServer([make_workflow("wf", "one")], AGENT) as server:
        identifier = "stranger" if workflows == "none for this agent" else AGENT
        if workflows == "all done":
            server.seed_progress("wf", "t/one", State.SUCCESS)
        transport = auto_for(server.address, identifier)
        try:
            assert transport.read() is None
            assert transport.chosen == "v2"
        finally:
            transport.close()


def test_auto_survives_a_server_that_is_down_at_start() -> None:
    with TinkServer([make_workflow()], AGENT, protocol="v1") as probe:
        address = probe.address
    transport = auto_for(address)
    try:
        with pytest.raises(TransportError) as caught:
            transport.read()
        assert not isinstance(caught.value, UnsupportedProtocol)
        assert "UNAVAILABLE" in str(caught.value)
        assert transport.chosen is None
        port = int(address.rsplit(":", 1)[1])
        with TinkServer([make_workflow()], AGENT, protocol="v1", port=port) as server:
            deadline = time.monotonic() + 15
            action = None
            while action is None and time.monotonic() < deadline:
                try:
                    action = transport.read()
                except TransportError:
                    time.sleep(0.2)  # still reconnecting
            assert action is not None and action.name == "one"
            assert transport.chosen == "v1"
            assert server.served == ["t/one"]
    finally:
        transport.close()


def test_v1_over_mutual_tls_and_from_settings(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    tls = ServerTls.from_files(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=pki.client_key.read_bytes(),
        certificate_chain=pki.client_cert.read_bytes(),
    )
    with TinkServer([make_workflow(agent=HARDWARE_ID)], HARDWARE_ID, protocol="v1-legacy", tls=tls,
                    hardware={MAC: HARDWARE_ID}) as server:  # fmt: skip
        settings = SimpleNamespace(
            target=server.address, identifier=MAC, credentials=credentials, server_name=None,
            cancelled=threading.Event(), max_backoff=1.0, options={},
        )  # fmt: skip
        with closing(legacy_from_settings(settings)) as transport:
            assert run(transport).name == "one"
        with closing(AutoTransport.from_settings(settings)) as auto:
            assert run(auto).name == "two"
            assert auto.chosen == "v1-legacy"
