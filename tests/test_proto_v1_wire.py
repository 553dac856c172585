"""The v1 and v1-legacy wire contract (PROTOCOL.md "v1"): names, numbers, method paths.

Also that all generated modules live in one process: v2 and v1 both need a service called
``proto.WorkflowService`` (with different methods), which one descriptor pool cannot hold twice.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor
from test_proto_wire import _field_type

from tinklet_core.protocol import tink_v1_hardware_pb2 as hw_pb
from tinklet_core.protocol import tink_v1_hardware_pb2_grpc as hw_grpc
from tinklet_core.protocol import tink_v1_workflow_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2
from tinklet_core.protocol.tink_v1_services import V1_LEGACY_SERVICE, V1_SERVICE, WorkflowServiceStub

WF = "github.com.tinkerbell.tink.protos.workflow"
HW = "github.com.tinkerbell.tink.protos.hardware"

EXPECTED_FIELDS: dict[str, dict[str, tuple[int, str]]] = {
    "WorkflowContextRequest": {"worker_id": (1, "string")},
    "WorkflowContext": {
        "workflow_id": (1, "string"),
        "current_worker": (2, "string"),
        "current_task": (3, "string"),
        "current_action": (4, "string"),
        "current_action_index": (5, "int64"),
        "current_action_state": (6, f"{WF}.State"),
        "total_number_of_actions": (7, "int64"),
    },
    "WorkflowActionsRequest": {"workflow_id": (1, "string")},
    "WorkflowActionList": {"action_list": (1, f"repeated {WF}.WorkflowAction")},
    "WorkflowAction": {
        "task_name": (1, "string"),
        "name": (2, "string"),
        "image": (3, "string"),
        "timeout": (4, "int64"),
        "command": (5, "repeated string"),
        "on_timeout": (6, "repeated string"),
        "on_failure": (7, "repeated string"),
        "worker_id": (8, "string"),
        "volumes": (9, "repeated string"),
        "environment": (10, "repeated string"),
        "pid": (11, "string"),
    },
    "WorkflowActionStatus": {
        "workflow_id": (1, "string"),
        "task_name": (2, "string"),
        "action_name": (3, "string"),
        "action_status": (4, f"{WF}.State"),
        "seconds": (5, "int64"),
        "message": (6, "string"),
        "created_at": (7, "google.protobuf.Timestamp"),
        "worker_id": (8, "string"),
    },
    "Empty": {},
}


def _fields(message: Descriptor) -> dict[str, tuple[int, str]]:
    return {field.name: (field.number, _field_type(field)) for field in message.fields}


def test_workflow_messages_and_numbers() -> None:
    assert pb.DESCRIPTOR.package == WF
    assert set(pb.DESCRIPTOR.message_types_by_name) == set(EXPECTED_FIELDS)
    for name, expected in EXPECTED_FIELDS.items():
        assert _fields(pb.DESCRIPTOR.message_types_by_name[name]) == expected, name


def test_state_is_a_top_level_enum_with_the_upstream_numbers() -> None:
    enum = pb.DESCRIPTOR.enum_types_by_name["State"]
    assert enum.full_name == f"{WF}.State"
    assert {v.name: v.number for v in enum.values} == {
        "STATE_PENDING": 0,
        "STATE_RUNNING": 1,
        "STATE_FAILED": 2,
        "STATE_TIMEOUT": 3,
        "STATE_SUCCESS": 4,
    }


def test_hardware_messages_and_service() -> None:
    assert hw_pb.DESCRIPTOR.package == HW
    assert _fields(hw_pb.GetRequest.DESCRIPTOR) == {
        "mac": (1, "string"),
        "ip": (2, "string"),
        "id": (3, "string"),
    }
    assert _fields(hw_pb.Hardware.DESCRIPTOR) == {"id": (7, "string")}
    service = hw_pb.DESCRIPTOR.services_by_name["HardwareService"]
    assert service.full_name == f"{HW}.HardwareService"
    assert {m.name: (m.input_type.name, m.output_type.name) for m in service.methods} == {
        "ByMAC": ("GetRequest", "Hardware"),
        "ByIP": ("GetRequest", "Hardware"),
    }


def test_every_generated_module_loads_in_one_process_and_pool() -> None:
    for name in ("tink_v2_pb2", "tink_v2_pb2_grpc", "tink_v1_workflow_pb2", "tink_v1_workflow_pb2_grpc",
                 "tink_v1_hardware_pb2", "tink_v1_hardware_pb2_grpc", "tink_v1_services"):  # fmt: skip
        importlib.import_module(f"tinklet_core.protocol.{name}")
    pool = descriptor_pool.Default()
    v2 = pool.FindServiceByName("proto.WorkflowService")
    assert [m.name for m in v2.methods] == ["GetAction", "ReportActionStatus"]
    assert v2.file is tink_v2_pb2.DESCRIPTOR
    legacy = pool.FindServiceByName(f"{WF}.WorkflowService")
    assert [(m.name, m.server_streaming) for m in legacy.methods] == [
        ("GetWorkflowContexts", True),
        ("GetWorkflowActions", False),
        ("ReportActionStatus", False),
    ]
    assert pool.FindServiceByName(f"{HW}.HardwareService").file is hw_pb.DESCRIPTOR
    # the files are registered under tinklet-specific names, so nobody else's can clash
    for module in (tink_v2_pb2, pb, hw_pb):
        assert module.DESCRIPTOR.name.startswith("tinklet_core/protocol/")
    assert V1_SERVICE == "proto.WorkflowService"
    assert f"{WF}.WorkflowService" == V1_LEGACY_SERVICE


# -- hand-encoded bytes --------------------------------------------------------------------------


def _key(number: int, wire_type: int) -> bytes:
    return bytes([number << 3 | wire_type])


def _text(number: int, value: str) -> bytes:
    data = value.encode()
    return _key(number, 2) + bytes([len(data)]) + data


def _varint(number: int, value: int) -> bytes:
    out = bytearray(_key(number, 0))
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_status_encodes_as_by_hand() -> None:
    moment = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
    status = pb.WorkflowActionStatus(
        workflow_id="wf", task_name="t", action_name="a", action_status=pb.STATE_TIMEOUT,
        seconds=63, message="timed out", worker_id="w",
    )  # fmt: skip
    status.created_at.FromDatetime(moment)
    stamp = _varint(1, int(moment.timestamp()))
    assert status.SerializeToString() == b"".join([
        _text(1, "wf"), _text(2, "t"), _text(3, "a"), _varint(4, 3), _varint(5, 63),
        _text(6, "timed out"), _key(7, 2) + bytes([len(stamp)]) + stamp, _text(8, "w"),
    ])  # fmt: skip


def test_context_and_hardware_decode_from_hand_bytes() -> None:
    context = pb.WorkflowContext.FromString(
        b"".join([_text(1, "wf"), _text(2, "w"), _text(3, "t"), _text(4, "a")])
        + b"".join([_varint(5, 2), _varint(6, 1), _varint(7, 4)])
    )
    assert (context.workflow_id, context.current_action_index, context.current_action_state) == (
        "wf", 2, pb.STATE_RUNNING,
    )  # fmt: skip
    assert context.total_number_of_actions == 4
    # a real server's Hardware has many more fields: only id (7) is read, the rest skipped
    hardware = hw_pb.Hardware.FromString(_text(1, "ignored") + _text(7, "hw-uuid") + _text(9, "x"))
    assert hardware.id == "hw-uuid"


# -- method paths --------------------------------------------------------------------------------


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[str]]]:
    """A server that records the raw method paths it is called on and answers empty messages."""
    called: list[str] = []

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            called.append(details.method)
            if details.method.endswith("/GetWorkflowContexts"):
                return grpc.unary_stream_rpc_method_handler(lambda request, context: iter([b""]))
            return grpc.unary_unary_rpc_method_handler(lambda request, context: b"")

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((Handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", called
    finally:
        server.stop(grace=0).wait(5)


@pytest.mark.parametrize("service", [V1_SERVICE, V1_LEGACY_SERVICE])
def test_the_v1_stub_dials_the_upstream_paths(raw_server: tuple[str, list[str]], service: str) -> None:
    address, called = raw_server
    with grpc.insecure_channel(address) as channel:
        stub = WorkflowServiceStub(channel, service)
        assert len(list(stub.GetWorkflowContexts(pb.WorkflowContextRequest(worker_id="w"), timeout=10))) == 1
        stub.GetWorkflowActions(pb.WorkflowActionsRequest(workflow_id="wf"), timeout=10)
        stub.ReportActionStatus(pb.WorkflowActionStatus(workflow_id="wf"), timeout=10)
        hw_grpc.HardwareServiceStub(channel).ByMAC(hw_pb.GetRequest(mac="m"), timeout=10)
    assert called == [
        f"/{service}/GetWorkflowContexts",
        f"/{service}/GetWorkflowActions",
        f"/{service}/ReportActionStatus",
        f"/{HW}.HardwareService/ByMAC",
    ]
