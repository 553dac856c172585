"""GrpcV2Transport against the in-process test Tink server, over real gRPC on loopback."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tinklet_core.durations import format_go_duration
from tinklet_core.errors import MalformedAction, TransportError
from tinklet_core.model import Action, Event, State, Volume
from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.testing.certs import TestPki, make_test_pki
from tinklet_core.testing.tink_server import ServerTls, TinkServer
from tinklet_core.transports.grpc_v2 import GrpcV2Transport, action_from_response
from tinklet_core.workflow import Task, Workflow, parse_workflow

AGENT = "agent-7"
WORKFLOW = {
    "name": "wf",
    "tasks": [
        {
            "name": "provision",
            "volumes": ["/dev:/dev"],
            "actions": [
                {
                    "name": "disk",
                    "image": "tinklet/busybox:latest",
                    "timeout": 90,
                    "command": ["sh", "-c", "echo $GREETING"],
                    "environment": {"GREETING": "hello world", "OPTS": "a=b c=d"},
                    "volumes": ["/etc/hostname:/host-hostname:ro", "cache:/cache"],
                    "namespaces": {"pid": "host", "network": "host"},
                },
                {"name": "plain", "image": "tinklet/busybox:latest"},
            ],
        },
        {"name": "finish", "actions": [{"name": "done", "image": "tinklet/busybox:latest", "pid": "host"}]},
    ],
}


@pytest.fixture
def workflow() -> Workflow:
    return parse_workflow(WORKFLOW, agent_id=AGENT)


@pytest.fixture
def server(workflow: Workflow) -> Iterator[TinkServer]:
    with TinkServer([workflow], AGENT) as running:
        yield running


def transport_for(address: str, **options: object) -> GrpcV2Transport:
    options.setdefault("credentials", None)
    options.setdefault("cancelled", threading.Event())
    options.setdefault("call_timeout", 10.0)
    return GrpcV2Transport(address, AGENT, **options)  # type: ignore[arg-type]


@pytest.fixture
def transport(server: TinkServer) -> Iterator[GrpcV2Transport]:
    client = transport_for(server.address)
    try:
        yield client
    finally:
        client.close()


def event(action: Action, state: State, **fields: object) -> Event:
    return Event(action=action, state=state, **fields)  # type: ignore[arg-type]


# -- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (dt.timedelta(0), "0s"),
        (dt.timedelta(microseconds=1), "1\u00b5s"),
        (dt.timedelta(microseconds=1500), "1.5ms"),
        (dt.timedelta(milliseconds=150), "150ms"),
        (dt.timedelta(milliseconds=999, microseconds=999), "999.999ms"),
        (dt.timedelta(seconds=1), "1s"),
        (dt.timedelta(seconds=2.5), "2.5s"),
        (dt.timedelta(seconds=59, microseconds=1), "59.000001s"),
        (dt.timedelta(seconds=63), "1m3s"),
        (dt.timedelta(minutes=2), "2m0s"),
        (dt.timedelta(hours=1), "1h0m0s"),
        (dt.timedelta(hours=26, minutes=3, seconds=4.25), "26h3m4.25s"),
        (dt.timedelta(seconds=-1.5), "-1.5s"),
        (dt.timedelta(milliseconds=-20), "-20ms"),
    ],
)
def test_format_go_duration(duration: dt.timedelta, text: str) -> None:
    assert format_go_duration(duration) == text


# -- reading actions ---------------------------------------------------------------------------


def test_reads_actions_in_order_with_every_field(
    server: TinkServer, transport: GrpcV2Transport, workflow: Workflow
) -> None:
    first = transport.read()
    assert first == workflow.actions[0]  # ids, name, image, timeout, command, env, volumes, namespaces
    assert first is not None
    assert first.env == (("GREETING", "hello world"), ("OPTS", "a=b c=d"))
    assert first.volumes == (
        Volume("/dev", "/dev"),
        Volume("/etc/hostname", "/host-hostname", read_only=True),
        Volume("cache", "/cache"),
    )
    assert (first.pid_namespace, first.network_namespace) == ("host", "host")
    assert first.command == ("sh", "-c", "echo $GREETING")
    assert first.timeout == 90

    transport.write(event(first, State.RUNNING))
    assert transport.read() == first  # served again until a final state is reported
    transport.write(event(first, State.SUCCESS))
    for expected in workflow.actions[1:]:
        action = transport.read()
        assert action == expected
        transport.write(event(expected, State.SUCCESS))
    assert transport.read() is None  # workflow done: FAILED_PRECONDITION means "nothing now"
    assert server.served == [a.action_id for a in workflow.actions[:1] * 2 + workflow.actions[1:]]
    assert transport.exhausted is False


def test_deprecated_pid_field_is_used_when_namespaces_has_none(workflow: Workflow) -> None:
    with TinkServer([workflow], AGENT, legacy_pid=True) as server:
        client = transport_for(server.address)
        try:
            action = client.read()
        finally:
            client.close()
    assert action is not None
    assert (action.pid_namespace, action.network_namespace) == ("host", "host")


def test_namespaces_pid_wins_over_deprecated_pid() -> None:
    response = pb.ActionResponse(
        workflow_id="w",
        task_id="t",
        action_id="a",
        image="img",
        pid="legacy",
        namespaces=pb.Namespaces(pid="host"),
    )
    assert action_from_response(response, AGENT).pid_namespace == "host"
    response.namespaces.pid = ""
    assert action_from_response(response, AGENT).pid_namespace == "legacy"


def test_nothing_to_do_is_none(workflow: Workflow) -> None:
    with TinkServer([], AGENT) as empty, TinkServer([workflow], "someone-else") as other:
        for address in (empty.address, other.address):
            client = transport_for(address)
            try:
                assert client.read() is None  # NOT_FOUND
            finally:
                client.close()


def test_failed_workflow_serves_nothing_more(transport: GrpcV2Transport, server: TinkServer) -> None:
    action = transport.read()
    assert action is not None
    transport.write(event(action, State.FAILED, message="exit code 3"))
    assert transport.read() is None
    assert server.workflow_state("wf") is State.FAILED


def test_malformed_action_names_the_field_and_keeps_the_ids() -> None:
    bad = Action(
        workflow_id="wf",
        task_id="t",
        action_id="t/bad",
        agent_id=AGENT,
        name="bad",
        image="img",
        env=(("GOOD", "1"),),
        volumes=(Volume("/ok", "/ok"), Volume("/x", "relative")),
    )
    with TinkServer([Workflow("wf", (Task("t", (bad,)),))], AGENT) as server:
        client = transport_for(server.address)
        try:
            with pytest.raises(MalformedAction) as caught:
                client.read()
        finally:
            client.close()
    assert "volumes" in str(caught.value) and "/x:relative" in str(caught.value)
    assert "t/bad" in str(caught.value)
    readable = caught.value.action
    assert (readable.workflow_id, readable.task_id, readable.action_id, readable.image) == (
        "wf",
        "t",
        "t/bad",
        "img",
    )
    assert readable.env == (("GOOD", "1"),) and readable.volumes == (Volume("/ok", "/ok"),)


def test_malformed_environment_entry() -> None:
    response = pb.ActionResponse(
        workflow_id="w", task_id="t", action_id="a", image="i", environment=["OK=1", "NOPE"]
    )
    with pytest.raises(MalformedAction, match="environment: 'NOPE' is not KEY=VALUE"):
        action_from_response(response, AGENT)


# -- writing events ----------------------------------------------------------------------------


def test_final_report_carries_times_duration_and_message(
    transport: GrpcV2Transport, server: TinkServer, workflow: Workflow
) -> None:
    action = workflow.actions[0]
    start = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
    stop = start + dt.timedelta(minutes=1, seconds=3, milliseconds=500)
    transport.write(event(action, State.RUNNING, started_at=start))
    transport.write(
        event(action, State.TIMEOUT, started_at=start, stopped_at=stop, message="timed out after 63s")
    )
    running, final = server.reports
    assert running.state is State.RUNNING and running.execution_start == start
    assert running.execution_stop is None and running.duration == ""
    assert final.state is State.TIMEOUT
    assert (final.execution_start, final.execution_stop) == (start, stop)
    assert final.duration == "1m3.5s"
    assert final.message == "timed out after 63s"
    assert (final.workflow_id, final.task_id, final.action_id, final.action_name, final.agent_id) == (
        "wf",
        "provision",
        "provision/disk",
        "disk",
        AGENT,
    )


def test_refused_report_is_retryable_then_delivered(
    transport: GrpcV2Transport, server: TinkServer, workflow: Workflow
) -> None:
    action = workflow.actions[0]
    server.refuse_reports(2)
    for _ in range(2):
        with pytest.raises(TransportError) as caught:
            transport.write(event(action, State.SUCCESS))
        assert caught.value.retryable
        assert "UNAVAILABLE" in str(caught.value) and server.address in str(caught.value)
    transport.write(event(action, State.SUCCESS))
    assert server.states_of(action.action_id) == [State.SUCCESS]


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED]
)
def test_transient_report_errors_are_retryable(
    transport: GrpcV2Transport, server: TinkServer, workflow: Workflow, code: grpc.StatusCode
) -> None:
    server.refuse_reports(1, code)
    with pytest.raises(TransportError) as caught:
        transport.write(event(workflow.actions[0], State.FAILED))
    assert caught.value.retryable and code.name in str(caught.value)


def test_report_for_unknown_action_is_not_retryable(transport: GrpcV2Transport, workflow: Workflow) -> None:
    ghost = Action(
        workflow_id="wf", task_id="t", action_id="t/ghost", agent_id=AGENT, name="ghost", image="i"
    )
    with pytest.raises(TransportError) as caught:
        transport.write(event(ghost, State.SUCCESS))
    assert not caught.value.retryable
    assert "NOT_FOUND" in str(caught.value)


def test_report_without_ids_is_not_retryable(transport: GrpcV2Transport) -> None:
    nameless = Action(workflow_id="", task_id="", action_id="", agent_id=AGENT, name="x", image="i")
    with pytest.raises(TransportError) as caught:
        transport.write(event(nameless, State.RUNNING))
    assert not caught.value.retryable and "INVALID_ARGUMENT" in str(caught.value)


# -- failures and cancellation -----------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_dead_server_is_a_quick_retryable_error() -> None:
    address = f"127.0.0.1:{closed_port()}"
    client = transport_for(address, call_timeout=3.0)
    try:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            client.read()
        elapsed = time.monotonic() - started
        with pytest.raises(TransportError) as caught_write:
            client.write(event(Action("w", "t", "a", AGENT, "n", "i"), State.RUNNING))
    finally:
        client.close()
    message = str(caught.value)
    assert caught.value.retryable and caught_write.value.retryable
    assert address in message and "UNAVAILABLE" in message
    assert "\n" not in message and "Traceback" not in message
    assert elapsed < 3.5


def test_cancel_abandons_a_slow_get_action(workflow: Workflow) -> None:
    cancelled = threading.Event()
    with TinkServer([workflow], AGENT, get_action_delay=20) as server:
        client = transport_for(server.address, cancelled=cancelled, call_timeout=30.0)
        try:
            timer = threading.Timer(0.3, cancelled.set)
            timer.start()
            started = time.monotonic()
            assert client.read() is None
            assert time.monotonic() - started < 1.3  # cancelled at 0.3 s, back within 1 s
            timer.join()
            assert client.read() is None  # already cancelled: no call at all
        finally:
            client.close()
        assert server.served == []


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def credentials(pki: TestPki, *, client_cert: bool = False) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=pki.client_key.read_bytes() if client_cert else None,
        certificate_chain=pki.client_cert.read_bytes() if client_cert else None,
    )


def read_once(address: str, creds: grpc.ChannelCredentials, server_name: str | None = None) -> Action | None:
    client = transport_for(address, credentials=creds, server_name=server_name, call_timeout=5.0)
    try:
        return client.read()
    finally:
        client.close()


def test_tls_with_the_test_ca(pki: TestPki, workflow: Workflow) -> None:
    with TinkServer([workflow], AGENT, tls=ServerTls.from_files(pki.server_cert, pki.server_key)) as server:
        assert read_once(server.address, credentials(pki)) == workflow.actions[0]
        assert read_once(server.address, credentials(pki), server_name="localhost") == workflow.actions[0]


def test_mtls_requires_a_client_certificate(pki: TestPki, workflow: Workflow) -> None:
    tls = ServerTls.from_files(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    with TinkServer([workflow], AGENT, tls=tls) as server:
        assert read_once(server.address, credentials(pki, client_cert=True)) == workflow.actions[0]
        with pytest.raises(TransportError) as caught:
            read_once(server.address, credentials(pki))
    assert server.address in str(caught.value) and "client certificate" in str(caught.value)
    assert server.served == [workflow.actions[0].action_id]


def test_wrong_ca_fails_with_a_clear_message(pki: TestPki, workflow: Workflow, tmp_path: Path) -> None:
    stranger = make_test_pki(tmp_path / "other", name="other")
    tls = ServerTls.from_files(pki.server_cert, pki.server_key)
    with TinkServer([workflow], AGENT, tls=tls) as server, pytest.raises(TransportError) as caught:
        read_once(server.address, credentials(stranger))
    message = str(caught.value)
    assert caught.value.retryable
    assert server.address in message and "UNAVAILABLE" in message
    assert "not signed by a trusted CA" in message
    assert "\n" not in message
    assert server.served == []


def test_server_name_must_match_the_certificate(pki: TestPki, workflow: Workflow) -> None:
    tls = ServerTls.from_files(pki.server_cert, pki.server_key)
    with TinkServer([workflow], AGENT, tls=tls) as server, pytest.raises(TransportError) as caught:
        read_once(server.address, credentials(pki), server_name="tink.example.com")
    assert "does not name this address" in str(caught.value)
