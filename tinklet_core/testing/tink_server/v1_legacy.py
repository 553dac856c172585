"""The v1-legacy protocol of the test Tink server: v1's methods under the older service name
``github.com.tinkerbell.tink.protos.workflow.WorkflowService``, plus HardwareService ByMAC/ByIP.

ByMAC / ByIP look the ``hardware`` map up (MAC or IP → hardware id, which is the worker id of
that server's workflows); an unknown one → UNKNOWN, as upstream's empty JSON.
"""

from __future__ import annotations

import grpc

from tinklet_core.protocol import tink_v1_hardware_pb2 as hw_pb
from tinklet_core.protocol import tink_v1_hardware_pb2_grpc as hw_grpc
from tinklet_core.protocol.tink_v1_services import V1_LEGACY_SERVICE
from tinklet_core.testing.tink_server.records import abort
from tinklet_core.testing.tink_server.state import ServerState
from tinklet_core.testing.tink_server.v1 import add_v1_service


def add_v1_legacy_services(server: grpc.Server, state: ServerState) -> None:
    """Serve v1's WorkflowService under its legacy name and the HardwareService from ``state``."""
    add_v1_service(server, state, V1_LEGACY_SERVICE)
    hw_grpc.add_HardwareServiceServicer_to_server(HardwareServicer(state), server)


class HardwareServicer(hw_grpc.HardwareServiceServicer):
    """v1-legacy's HardwareService: ByMAC / ByIP from the server's hardware map."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def ByMAC(self, request: hw_pb.GetRequest, context: grpc.ServicerContext) -> hw_pb.Hardware:
        self._state.called("ByMAC")
        return self._by(request.mac, context)

    def ByIP(self, request: hw_pb.GetRequest, context: grpc.ServicerContext) -> hw_pb.Hardware:
        self._state.called("ByIP")
        return self._by(request.ip, context)

    def _by(self, key: str, context: grpc.ServicerContext) -> hw_pb.Hardware:
        with self._state.changed:
            hardware_id = self._state.hardware.get(key) if key else None
        if hardware_id is None:
            abort(context, grpc.StatusCode.UNKNOWN, "unexpected end of JSON input")
        return hw_pb.Hardware(id=hardware_id)
