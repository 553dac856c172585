"""Generated protobuf and gRPC code for the Tink protocols (do not edit by hand).

``tink_v2_pb2`` / ``tink_v2_pb2_grpc`` come from ``proto/tinklet_core/protocol/tink_v2.proto``
(package ``proto``, service ``proto.WorkflowService``). Regenerate them with ``scripts/gen-proto``.
"""
