"""The in-process test Tink server behaves like the upstream v2 server (PROTOCOL.md).

These talk to it with the bare generated stub, so every status code is seen as a client sees it.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from tinklet_core.model import State
from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2_grpc as pb_grpc
from tinklet_core.testing.tink_server import Report, TinkServer
from tinklet_core.transports.grpc_v2 import STATE_TYPES
from tinklet_core.workflow import Workflow, parse_workflow

AGENT = "agent-1"


def make_workflow(name: str, *actions: str) -> Workflow:
    data = {"name": name, "tasks": [{"name": "t", "actions": [{"name": a, "image": "img"} for a in actions]}]}
    return parse_workflow(data, agent_id=AGENT)


@pytest.fixture
def server() -> Iterator[TinkServer]:
    with TinkServer([make_workflow("wf", "one", "two")], AGENT) as running:
        yield running


@pytest.fixture
def stub(server: TinkServer) -> Iterator[pb_grpc.WorkflowServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.WorkflowServiceStub(channel)


def get(stub: pb_grpc.WorkflowServiceStub, agent: str = AGENT) -> pb.ActionResponse:
    return stub.GetAction(pb.ActionRequest(agent_id=agent), timeout=10)


def code_of_get(stub: pb_grpc.WorkflowServiceStub, agent: str = AGENT) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        get(stub, agent)
    return caught.value.code()


def report(stub: pb_grpc.WorkflowServiceStub, action_id: str, state: State, **fields: str) -> None:
    values: dict[str, Any] = {
        "workflow_id": "wf",
        "task_id": "t",
        "action_id": action_id,
        "agent_id": AGENT,
        **fields,
    }
    stub.ReportActionStatus(pb.ActionStatusRequest(action_state=STATE_TYPES[state], **values), timeout=10)


def code_of_report(
    stub: pb_grpc.WorkflowServiceStub, action_id: str, state: State, **fields: str
) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        report(stub, action_id, state, **fields)
    return caught.value.code()


def test_serves_on_an_ephemeral_loopback_port(server: TinkServer) -> None:
    host, port = server.address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


def test_empty_agent_id_is_invalid(stub: pb_grpc.WorkflowServiceStub) -> None:
    assert code_of_get(stub, agent="") is grpc.StatusCode.INVALID_ARGUMENT


def test_another_agent_or_no_workflow_is_not_found(stub: pb_grpc.WorkflowServiceStub) -> None:
    assert code_of_get(stub, agent="stranger") is grpc.StatusCode.NOT_FOUND
    with TinkServer([], AGENT) as empty, grpc.insecure_channel(empty.address) as channel:
        assert code_of_get(pb_grpc.WorkflowServiceStub(channel)) is grpc.StatusCode.NOT_FOUND


def test_action_is_served_again_until_a_final_state(
    server: TinkServer, stub: pb_grpc.WorkflowServiceStub
) -> None:
    assert get(stub).action_id == "t/one"
    assert get(stub).action_id == "t/one"  # handed out, no report yet
    report(stub, "t/one", State.RUNNING)
    assert get(stub).action_id == "t/one"  # RUNNING: a restarted worker gets it back
    assert server.workflow_state("wf") is State.RUNNING
    report(stub, "t/one", State.SUCCESS)
    assert get(stub).action_id == "t/two"
    report(stub, "t/two", State.SUCCESS)
    assert code_of_get(stub) is grpc.StatusCode.FAILED_PRECONDITION  # workflow done
    assert server.workflow_state("wf") is State.SUCCESS
    assert server.served == ["t/one", "t/one", "t/one", "t/two"]
    assert server.states_of("t/one") == [State.RUNNING, State.SUCCESS]
    assert server.all_finished


@pytest.mark.parametrize("final", [State.FAILED, State.TIMEOUT])
def test_a_non_success_final_state_ends_the_workflow(
    server: TinkServer, stub: pb_grpc.WorkflowServiceStub, final: State
) -> None:
    get(stub)
    report(stub, "t/one", final)
    assert code_of_get(stub) is grpc.StatusCode.FAILED_PRECONDITION
    assert server.workflow_state("wf") is final
    report(stub, "t/one", State.RUNNING)  # a late report is accepted but does not revive it
    assert server.workflow_state("wf") is final


def test_workflows_are_served_one_after_the_other() -> None:
    with TinkServer([make_workflow("a", "x"), make_workflow("b", "x")], AGENT) as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.WorkflowServiceStub(channel)
            assert (get(stub).workflow_id, get(stub).action_id) == ("a", "t/x")
            report(stub, "t/x", State.SUCCESS, workflow_id="a")
            assert get(stub).workflow_id == "b"
            report(stub, "t/x", State.FAILED, workflow_id="b")
            assert code_of_get(stub) is grpc.StatusCode.FAILED_PRECONDITION
        assert (server.workflow_state("a"), server.workflow_state("b")) == (State.SUCCESS, State.FAILED)


def test_duplicate_workflow_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        TinkServer([make_workflow("a", "x"), make_workflow("a", "y")], AGENT)


@pytest.mark.parametrize("missing", ["workflow_id", "task_id", "action_id"])
def test_report_missing_an_id_is_invalid(stub: pb_grpc.WorkflowServiceStub, missing: str) -> None:
    fields = {"workflow_id": "wf", "task_id": "t", "action_id": "t/one", missing: ""}
    action_id = fields.pop("action_id")
    assert code_of_report(stub, action_id, State.RUNNING, **fields) is grpc.StatusCode.INVALID_ARGUMENT


def test_report_with_unspecified_state_is_invalid(stub: pb_grpc.WorkflowServiceStub) -> None:
    request = pb.ActionStatusRequest(workflow_id="wf", task_id="t", action_id="t/one", agent_id=AGENT)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ReportActionStatus(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_report_for_unknown_action_or_agent_is_not_found(
    server: TinkServer, stub: pb_grpc.WorkflowServiceStub
) -> None:
    assert code_of_report(stub, "t/ghost", State.SUCCESS) is grpc.StatusCode.NOT_FOUND
    assert code_of_report(stub, "t/one", State.SUCCESS, agent_id="stranger") is grpc.StatusCode.NOT_FOUND
    assert server.reports == []


def test_reports_are_recorded_with_every_field(server: TinkServer, stub: pb_grpc.WorkflowServiceStub) -> None:
    start = dt.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)
    request = pb.ActionStatusRequest(
        workflow_id="wf",
        agent_id=AGENT,
        task_id="t",
        action_id="t/one",
        action_name="one",
        action_state=pb.ActionStatusRequest.FAILED,
        execution_duration="2.5s",
        message=pb.ActionMessage(message="exit code 3"),
    )
    request.execution_start.FromDatetime(start)
    request.execution_stop.FromDatetime(start + dt.timedelta(seconds=2.5))
    stub.ReportActionStatus(request, timeout=10)
    (recorded,) = server.reports
    assert recorded == Report(
        workflow_id="wf",
        task_id="t",
        action_id="t/one",
        action_name="one",
        state=State.FAILED,
        message="exit code 3",
        execution_start=start,
        execution_stop=start + dt.timedelta(seconds=2.5),
        duration="2.5s",
        agent_id=AGENT,
        received_at=recorded.received_at,
    )
    assert recorded.received_at.tzinfo is not None


def test_refused_final_reports_are_not_recorded(
    server: TinkServer, stub: pb_grpc.WorkflowServiceStub
) -> None:
    server.refuse_reports(2, grpc.StatusCode.DEADLINE_EXCEEDED)
    report(stub, "t/one", State.RUNNING)  # not final: accepted
    assert code_of_report(stub, "t/one", State.SUCCESS) is grpc.StatusCode.DEADLINE_EXCEEDED
    assert code_of_report(stub, "t/one", State.SUCCESS) is grpc.StatusCode.DEADLINE_EXCEEDED
    report(stub, "t/one", State.SUCCESS)
    assert server.states_of("t/one") == [State.RUNNING, State.SUCCESS]
    assert get(stub).action_id == "t/two"


def test_refusals_can_cover_every_report(server: TinkServer, stub: pb_grpc.WorkflowServiceStub) -> None:
    server.refuse_reports(1, final_only=False)
    assert code_of_report(stub, "t/one", State.RUNNING) is grpc.StatusCode.UNAVAILABLE
    report(stub, "t/one", State.RUNNING)
    assert server.states_of("t/one") == [State.RUNNING]


def test_wait_until(server: TinkServer, stub: pb_grpc.WorkflowServiceStub) -> None:
    assert not server.wait_until(lambda: bool(server.reports), timeout=0.1)
    later = threading.Timer(0.1, lambda: report(stub, "t/one", State.RUNNING))
    later.start()
    try:
        assert server.wait_until(lambda: server.states_of("t/one") == [State.RUNNING], timeout=10)
    finally:
        later.join()


def test_namespaces_and_legacy_pid() -> None:
    data = {"name": "wf", "tasks": [{"name": "t", "actions": [
        {"name": "a", "image": "img", "namespaces": {"pid": "host", "network": "host"}}]}]}  # fmt: skip
    workflow = parse_workflow(data, agent_id=AGENT)
    for legacy, namespaces_pid in ((False, "host"), (True, "")):
        with (
            TinkServer([workflow], AGENT, legacy_pid=legacy) as server,
            grpc.insecure_channel(server.address) as ch,
        ):
            response = get(pb_grpc.WorkflowServiceStub(ch))
        assert (response.pid, response.namespaces.pid, response.namespaces.network) == (
            "host",
            namespaces_pid,
            "host",
        )


def test_command_line_server(tmp_path: Path) -> None:
    workflow_file = tmp_path / "demo.yaml"
    workflow_file.write_text(
        yaml.safe_dump(
            {"name": "demo", "tasks": [{"name": "t", "actions": [{"name": "hello", "image": "img"}]}]}
        )
    )
    command = [sys.executable, "-m", "tinklet_core.testing.tink_server", str(workflow_file), "--agent", AGENT]
    process = subprocess.Popen(
        [*command, "--port", "0", "--exit-when-done"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith(f"serving demo to agent {AGENT} on 127.0.0.1:"), banner
        address = banner.split()[-1]
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.WorkflowServiceStub(channel)
            assert get(stub).action_id == "t/hello"
            report(stub, "t/hello", State.RUNNING, workflow_id="demo")
            report(stub, "t/hello", State.SUCCESS, workflow_id="demo", execution_duration="1.5s")
        out, _err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    lines = out.splitlines()
    assert lines[0].endswith("demo t/hello RUNNING")
    assert lines[1].endswith("demo t/hello SUCCESS (1.5s)")


def test_command_line_server_reports_a_bad_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinklet_core.testing.tink_server",
            str(tmp_path / "nope.yaml"),
            "--agent",
            AGENT,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr
