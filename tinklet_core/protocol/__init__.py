"""Generated protobuf and gRPC code for the Tink protocols (do not edit by hand).

``tink_v2_pb2`` / ``tink_v2_pb2_grpc`` come from ``proto/tinklet_core/protocol/tink_v2.proto``
(package ``proto``, service ``proto.WorkflowService``); ``tink_v1_workflow_pb2*`` and
``tink_v1_hardware_pb2*`` from the v1 files (packages ``github.com.tinkerbell.tink.protos.*``).
Regenerate them with ``scripts/gen-proto``. ``tink_v1_services`` is the one hand-written module:
it binds the v1 service under either of its names (``proto/README.md`` says why).
"""
