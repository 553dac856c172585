"""The v2 wire contract: package, service paths, every field name and number (PROTOCOL.md v2).

A wrong number breaks interop with a real Tink server silently, so the generated descriptors are
compared with the tables written out here, and hand-encoded bytes are decoded and produced.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1]

# field name -> (number, type); "repeated " marks repeated fields, messages/enums by full name.
EXPECTED_FIELDS: dict[str, dict[str, tuple[int, str]]] = {
    "ActionRequest": {"agent_id": (1, "string"), "agent_attributes": (2, "proto.AgentAttributes")},
    "AgentAttributes": {
        "cpu": (1, "proto.CPU"),
        "memory": (2, "proto.Memory"),
        "block": (3, "repeated proto.Block"),
        "network": (4, "repeated proto.Network"),
        "pci": (5, "repeated proto.PCI"),
        "gpu": (6, "repeated proto.GPU"),
        "chassis": (7, "proto.Chassis"),
        "bios": (8, "proto.BIOS"),
        "baseboard": (9, "proto.Baseboard"),
        "product": (10, "proto.Product"),
    },
    "CPU": {
        "total_cores": (1, "uint32"),
        "total_threads": (2, "uint32"),
        "processors": (3, "repeated proto.Processor"),
    },
    "Processor": {
        "id": (1, "uint32"),
        "cores": (2, "uint32"),
        "threads": (3, "uint32"),
        "vendor": (4, "string"),
        "model": (5, "string"),
        "capabilities": (6, "repeated string"),
    },
    "Memory": {"total": (1, "string"), "usable": (2, "string")},
    "Block": {
        "name": (1, "string"),
        "controller_type": (2, "string"),
        "drive_type": (3, "string"),
        "size": (4, "string"),
        "physical_block_size": (5, "string"),
        "vendor": (6, "string"),
        "model": (7, "string"),
        "wwn": (8, "string"),
        "serial_number": (9, "string"),
    },
    "Network": {
        "name": (1, "string"),
        "mac": (2, "string"),
        "speed": (3, "string"),
        "enabled_capabilities": (4, "repeated string"),
    },
    "PCI": {
        "vendor": (1, "string"),
        "product": (2, "string"),
        "class": (3, "string"),
        "driver": (4, "string"),
    },
    "GPU": {
        "vendor": (1, "string"),
        "product": (2, "string"),
        "class": (3, "string"),
        "driver": (4, "string"),
    },
    "Chassis": {"serial": (1, "string"), "vendor": (2, "string")},
    "BIOS": {"vendor": (1, "string"), "version": (2, "string"), "release_date": (3, "string")},
    "Baseboard": {
        "vendor": (1, "string"),
        "product": (2, "string"),
        "version": (3, "string"),
        "serial_number": (4, "string"),
    },
    "Product": {"name": (1, "string"), "vendor": (2, "string"), "serial_number": (3, "string")},
    "ActionResponse": {
        "workflow_id": (1, "string"),
        "task_id": (2, "string"),
        "agent_id": (3, "string"),
        "action_id": (4, "string"),
        "name": (5, "string"),
        "image": (6, "string"),
        "timeout": (7, "int64"),
        "command": (8, "repeated string"),
        "volumes": (9, "repeated string"),
        "environment": (10, "repeated string"),
        "pid": (11, "string"),
        "namespaces": (12, "proto.Namespaces"),
    },
    "Namespaces": {"network": (1, "string"), "pid": (2, "string")},
    "ActionStatusRequest": {
        "workflow_id": (1, "string"),
        "agent_id": (2, "string"),
        "task_id": (3, "string"),
        "action_id": (4, "string"),
        "action_name": (5, "string"),
        "action_state": (6, "proto.ActionStatusRequest.StateType"),
        "execution_start": (7, "google.protobuf.Timestamp"),
        "execution_stop": (8, "google.protobuf.Timestamp"),
        "execution_duration": (9, "string"),
        "message": (10, "proto.ActionMessage"),
    },
    "ActionMessage": {"message": (1, "string")},
    "ActionStatusResponse": {},
}

_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_INT64: "int64",
}


def _field_type(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        name = field.message_type.full_name
    elif field.enum_type is not None:
        name = field.enum_type.full_name
    else:
        name = _SCALARS[field.type]
    if hasattr(field, "is_repeated"):  # protobuf >= 6.31; 7.x removed `label`
        repeated = field.is_repeated
    else:
        repeated = field.label == FieldDescriptor.LABEL_REPEATED
    return f"repeated {name}" if repeated else name


def _fields(message: Descriptor) -> dict[str, tuple[int, str]]:
    return {field.name: (field.number, _field_type(field)) for field in message.fields}


def test_package_and_syntax() -> None:
    assert pb.DESCRIPTOR.package == "proto"
    assert pb.DESCRIPTOR.name == "tinklet_core/protocol/tink_v2.proto"  # unique in the descriptor pool


def test_every_message_and_field_is_pinned() -> None:
    assert set(pb.DESCRIPTOR.message_types_by_name) == set(EXPECTED_FIELDS)
    for name, expected in EXPECTED_FIELDS.items():
        assert _fields(pb.DESCRIPTOR.message_types_by_name[name]) == expected, name


def test_state_type_values() -> None:
    enum = pb.ActionStatusRequest.DESCRIPTOR.enum_types_by_name["StateType"]
    assert enum.full_name == "proto.ActionStatusRequest.StateType"
    assert {value.name: value.number for value in enum.values} == {
        "UNSPECIFIED": 0,
        "PENDING": 1,
        "RUNNING": 2,
        "FAILED": 3,
        "TIMEOUT": 4,
        "SUCCESS": 5,
    }


def test_service_and_methods() -> None:
    service = pb.DESCRIPTOR.services_by_name["WorkflowService"]
    assert service.full_name == "proto.WorkflowService"
    methods = {
        m.name: (m.input_type.full_name, m.output_type.full_name, m.client_streaming, m.server_streaming)
        for m in service.methods
    }
    assert methods == {
        "GetAction": ("proto.ActionRequest", "proto.ActionResponse", False, False),
        "ReportActionStatus": ("proto.ActionStatusRequest", "proto.ActionStatusResponse", False, False),
    }


# -- hand-encoded wire bytes -----------------------------------------------------------------------


def _key(number: int, wire_type: int) -> bytes:
    return bytes([number << 3 | wire_type])  # every number used here is < 16


def _text(number: int, value: str) -> bytes:
    data = value.encode()
    return _key(number, 2) + bytes([len(data)]) + data  # short values only


def _nested(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + bytes([len(payload)]) + payload


def _varint(number: int, value: int) -> bytes:
    out = bytearray(_key(number, 0))
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


ACTION_RESPONSE_WIRE = b"".join(
    [
        _text(1, "wf-1"),
        _text(2, "provision"),
        _text(3, "agent-7"),
        _text(4, "provision/disk"),
        _text(5, "disk"),
        _text(6, "quay.io/tinkerbell/image2disk:v1"),
        _varint(7, 600),
        _text(8, "sh"),
        _text(8, "-c"),
        _text(9, "/dev:/dev"),
        _text(9, "/etc/x:/x:ro"),
        _text(10, "A=b c=d"),
        _text(11, "legacy"),
        _nested(12, _text(1, "host") + _text(2, "host")),
    ]
)


def test_hand_encoded_action_response_decodes() -> None:
    response = pb.ActionResponse.FromString(ACTION_RESPONSE_WIRE)
    assert response.workflow_id == "wf-1"
    assert response.task_id == "provision"
    assert response.agent_id == "agent-7"
    assert response.action_id == "provision/disk"
    assert response.name == "disk"
    assert response.image == "quay.io/tinkerbell/image2disk:v1"
    assert response.timeout == 600
    assert list(response.command) == ["sh", "-c"]
    assert list(response.volumes) == ["/dev:/dev", "/etc/x:/x:ro"]
    assert list(response.environment) == ["A=b c=d"]
    assert response.pid == "legacy"
    assert (response.namespaces.network, response.namespaces.pid) == ("host", "host")


def test_action_status_request_encodes_as_by_hand() -> None:
    start = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
    request = pb.ActionStatusRequest(
        workflow_id="wf-1",
        agent_id="agent-7",
        task_id="provision",
        action_id="provision/disk",
        action_name="disk",
        action_state=pb.ActionStatusRequest.TIMEOUT,
        execution_duration="1m3s",
        message=pb.ActionMessage(message="timed out"),
    )
    request.execution_start.FromDatetime(start)
    request.execution_stop.FromDatetime(start + dt.timedelta(seconds=63))
    seconds = int(start.timestamp())
    expected = b"".join(
        [
            _text(1, "wf-1"),
            _text(2, "agent-7"),
            _text(3, "provision"),
            _text(4, "provision/disk"),
            _text(5, "disk"),
            _varint(6, 4),  # TIMEOUT
            _nested(7, _varint(1, seconds)),
            _nested(8, _varint(1, seconds + 63)),
            _text(9, "1m3s"),
            _nested(10, _text(1, "timed out")),
        ]
    )
    assert request.SerializeToString() == expected


# -- the generated stub dials the upstream method paths ------------------------------------------


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A server that knows only the raw method paths and bytes, not the generated code."""
    received: list[tuple[str, bytes]] = []

    def get_action(request: bytes, context: grpc.ServicerContext) -> bytes:
        received.append(("/proto.WorkflowService/GetAction", request))
        return ACTION_RESPONSE_WIRE

    def report(request: bytes, context: grpc.ServicerContext) -> bytes:
        received.append(("/proto.WorkflowService/ReportActionStatus", request))
        return b""

    handler = grpc.method_handlers_generic_handler(
        "proto.WorkflowService",
        {
            "GetAction": grpc.unary_unary_rpc_method_handler(get_action),
            "ReportActionStatus": grpc.unary_unary_rpc_method_handler(report),
        },
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", received
    finally:
        server.stop(grace=0).wait(5)


def test_stub_uses_upstream_method_paths(raw_server: tuple[str, list[tuple[str, bytes]]]) -> None:
    address, received = raw_server
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.WorkflowServiceStub(channel)
        response = stub.GetAction(pb.ActionRequest(agent_id="agent-7"), timeout=10)
        stub.ReportActionStatus(pb.ActionStatusRequest(action_id="x"), timeout=10)
    assert response.action_id == "provision/disk"
    assert received == [
        ("/proto.WorkflowService/GetAction", _text(1, "agent-7")),
        ("/proto.WorkflowService/ReportActionStatus", _text(4, "x")),
    ]


# -- the generated code's runtime pins match the declared dependency floors ----------------------


def _floor(requirement: str) -> tuple[int, ...]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in dependencies:
        match = re.fullmatch(rf"{requirement}\s*>=\s*([\d.]+)\s*(?:,.*)?", dependency.strip())
        if match:
            return _version(match.group(1))
    raise AssertionError(f"pyproject.toml declares no {requirement}>= floor")


def _version(text: str) -> tuple[int, ...]:
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def test_declared_floors_cover_the_generated_code() -> None:
    grpc_pin = _version(pb_grpc.GRPC_GENERATED_VERSION)
    source = (ROOT / "tinklet_core/protocol/tink_v2_pb2.py").read_text()
    match = re.search(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+)",
        source,
    )
    assert match, "the generated code no longer pins a protobuf runtime the usual way"
    protobuf_pin = tuple(int(group) for group in match.groups())
    assert _floor("grpcio") >= grpc_pin, f"generated code needs grpcio>={pb_grpc.GRPC_GENERATED_VERSION}"
    assert _floor("protobuf") >= protobuf_pin, (
        f"generated code needs protobuf>={'.'.join(map(str, protobuf_pin))}"
    )
