"""The test Tink server's v1 and v1-legacy dialects behave like the upstream server (PROTOCOL.md).

Talked to with the bare stubs, so every status code and context is seen as a client sees it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from tinklet_core.protocol import tink_v1_hardware_pb2 as hw_pb
from tinklet_core.protocol import tink_v1_hardware_pb2_grpc as hw_grpc
from tinklet_core.protocol import tink_v1_workflow_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2, tink_v2_pb2_grpc
from tinklet_core.protocol.tink_v1_services import V1_LEGACY_SERVICE, V1_SERVICE, WorkflowServiceStub
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import Workflow, parse_workflow

AGENT = "agent-v1"


def workflow(name: str = "wf") -> Workflow:
    data = {"name": name, "tasks": [{"name": "t", "actions": [{"name": n, "image": "img"} for n in "abc"]}]}
    return parse_workflow(data, agent_id=AGENT)


@pytest.fixture
def server() -> Iterator[TinkServer]:
    with TinkServer([workflow()], AGENT, protocol="v1") as running:
        yield running


@pytest.fixture
def stub(server: TinkServer) -> Iterator[WorkflowServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield WorkflowServiceStub(channel, V1_SERVICE)


def contexts(stub: WorkflowServiceStub, worker: str = AGENT) -> list[tuple[str, int, int]]:
    answer = stub.GetWorkflowContexts(pb.WorkflowContextRequest(worker_id=worker), timeout=10)
    return [(c.current_action, c.current_action_index, c.current_action_state) for c in answer]


def report(stub: WorkflowServiceStub, action: str, state: int) -> None:
    status = pb.WorkflowActionStatus(workflow_id="wf", task_name="t", action_name=action, action_status=state)
    stub.ReportActionStatus(status, timeout=10)


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()


def test_contexts_follow_upstreams_filter(stub: WorkflowServiceStub) -> None:
    assert contexts(stub) == [("", 0, pb.STATE_PENDING)]
    assert contexts(stub, "stranger") == []
    report(stub, "a", pb.STATE_RUNNING)
    assert contexts(stub) == [("a", 0, pb.STATE_RUNNING)]
    report(stub, "a", pb.STATE_SUCCESS)
    assert contexts(stub) == [("a", 0, pb.STATE_SUCCESS)]
    report(stub, "b", pb.STATE_RUNNING)  # RUNNING after a report is for the next action
    report(stub, "b", pb.STATE_SUCCESS)
    assert contexts(stub) == []  # upstream sends a SUCCESS context only at index 0
    report(stub, "c", pb.STATE_RUNNING)
    assert contexts(stub) == [("c", 2, pb.STATE_RUNNING)]
    report(stub, "c", pb.STATE_FAILED)
    assert contexts(stub) == []


def test_reports_must_be_for_the_current_action(stub: WorkflowServiceStub) -> None:
    assert code_of(lambda: report(stub, "b", pb.STATE_RUNNING)) is grpc.StatusCode.INVALID_ARGUMENT
    report(stub, "a", pb.STATE_RUNNING)
    # the same RUNNING again counts as the start of "b"
    assert code_of(lambda: report(stub, "a", pb.STATE_RUNNING)) is grpc.StatusCode.INVALID_ARGUMENT
    report(stub, "a", pb.STATE_SUCCESS)
    report(stub, "a", pb.STATE_SUCCESS)  # a repeated final for the current action is accepted


def test_missing_fields_and_unknown_ids(stub: WorkflowServiceStub) -> None:
    empty = pb.WorkflowActionStatus(workflow_id="wf", task_name="t", action_status=pb.STATE_RUNNING)
    assert code_of(lambda: stub.ReportActionStatus(empty, timeout=10)) is grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: contexts(stub, "")) is grpc.StatusCode.INVALID_ARGUMENT
    unknown = pb.WorkflowActionsRequest(workflow_id="nope")
    assert code_of(lambda: stub.GetWorkflowActions(unknown, timeout=10)) is grpc.StatusCode.ABORTED
    actions = stub.GetWorkflowActions(pb.WorkflowActionsRequest(workflow_id="wf"), timeout=10).action_list
    assert [(a.task_name, a.name, a.worker_id) for a in actions] == [("t", n, AGENT) for n in "abc"]


def test_a_v1_server_answers_v2_and_legacy_calls_unimplemented(server: TinkServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        v2 = tink_v2_pb2_grpc.WorkflowServiceStub(channel)
        legacy = WorkflowServiceStub(channel, V1_LEGACY_SERVICE)
        get = tink_v2_pb2.ActionRequest(agent_id=AGENT)
        assert code_of(lambda: v2.GetAction(get, timeout=10)) is grpc.StatusCode.UNIMPLEMENTED
        assert code_of(lambda: contexts(legacy)) is grpc.StatusCode.UNIMPLEMENTED


def test_legacy_hardware_lookup() -> None:
    hardware = {"02:42:ac:11:00:07": "hw-1", "10.0.0.7": "hw-1"}
    with (
        TinkServer([workflow()], AGENT, protocol="v1-legacy", hardware=hardware) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        lookup = hw_grpc.HardwareServiceStub(channel)
        assert lookup.ByMAC(hw_pb.GetRequest(mac="02:42:ac:11:00:07"), timeout=10).id == "hw-1"
        assert lookup.ByIP(hw_pb.GetRequest(ip="10.0.0.7"), timeout=10).id == "hw-1"
        unknown = hw_pb.GetRequest(mac="02:42:ac:11:00:08")
        assert code_of(lambda: lookup.ByMAC(unknown, timeout=10)) is grpc.StatusCode.UNKNOWN
        assert contexts(WorkflowServiceStub(channel, V1_LEGACY_SERVICE)) == [("", 0, pb.STATE_PENDING)]
        v1 = WorkflowServiceStub(channel, V1_SERVICE)
        assert code_of(lambda: contexts(v1)) is grpc.StatusCode.UNIMPLEMENTED


def test_command_line_server_speaks_v1_legacy(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        yaml.safe_dump({"name": "wf", "tasks": [{"name": "t", "actions": [{"name": "a", "image": "i"}]}]})
    )
    command = [sys.executable, "-m", "tinklet_core.testing.tink_server", str(path), "--agent", "hw-9"]
    bad = subprocess.run([*command, "--hardware", "no-equals"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "MAC_OR_IP=ID" in bad.stderr
    process = subprocess.Popen(
        [*command, "--port", "0", "--exit-when-done", "--protocol", "v1-legacy",
         "--hardware", "10.1.2.3=hw-9"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.rstrip().endswith("(v1-legacy)"), banner
        address = banner.split()[-2]
        with grpc.insecure_channel(address) as channel:
            hardware = hw_grpc.HardwareServiceStub(channel).ByIP(hw_pb.GetRequest(ip="10.1.2.3"), timeout=10)
            stub = WorkflowServiceStub(channel, V1_LEGACY_SERVICE)
            assert contexts(stub, hardware.id) == [("", 0, pb.STATE_PENDING)]
            report(stub, "a", pb.STATE_RUNNING)
            status = pb.WorkflowActionStatus(
                workflow_id="wf", task_name="t", action_name="a", action_status=pb.STATE_SUCCESS, seconds=3
            )
            stub.ReportActionStatus(status, timeout=10)
        out, _err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert out.splitlines()[-1].endswith("wf t/a SUCCESS (3s)")
