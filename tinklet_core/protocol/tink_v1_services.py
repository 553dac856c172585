"""The v1 WorkflowService under either of its two names (hand-written, not generated).

tink v0.6 … v0.8 serve the v1 methods as ``github.com.tinkerbell.tink.protos.workflow.
WorkflowService`` (the package of ``tink_v1_workflow.proto``, so the generated stub already
dials those paths); tink v0.9 … v0.12 serve the very same messages and methods as
``proto.WorkflowService``, which v2's generated code already registers in the descriptor pool
with other methods. So the v1 service is declared once in the .proto file and bound here, under
a name chosen at run time, from that declaration (``proto/README.md`` explains the layout).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from tinklet_core.protocol import tink_v1_workflow_pb2 as pb

V1_SERVICE = "proto.WorkflowService"
"""The v1 service's full name on tink v0.9 … v0.12."""

V1_LEGACY_SERVICE = "github.com.tinkerbell.tink.protos.workflow.WorkflowService"
"""The v1 service's full name on tink v0.6 … v0.8."""

_DECLARED = pb.DESCRIPTOR.services_by_name["WorkflowService"]


def _message_class(name: str) -> type[Message]:
    cls: type[Message] = getattr(pb, name)
    return cls


class WorkflowServiceStub:
    """A client for the v1 methods of ``service`` (:data:`V1_SERVICE` or :data:`V1_LEGACY_SERVICE`).

    Attributes are the method callables, as on a generated stub: ``GetWorkflowContexts``
    (server-streaming), ``GetWorkflowActions`` and ``ReportActionStatus``.
    """

    GetWorkflowContexts: Any
    GetWorkflowActions: Any
    ReportActionStatus: Any

    def __init__(self, channel: grpc.Channel, service: str) -> None:
        for method in _DECLARED.methods:
            make = channel.unary_stream if method.server_streaming else channel.unary_unary
            callable_ = make(
                f"/{service}/{method.name}",
                request_serializer=_message_class(method.input_type.name).SerializeToString,
                response_deserializer=_message_class(method.output_type.name).FromString,
            )
            setattr(self, method.name, callable_)


def service_handler(servicer: object, service: str) -> grpc.GenericRpcHandler:
    """A server handler routing the v1 methods of ``service`` to ``servicer``'s same-named methods.

    Methods the handler does not know (v2's GetAction, say) are answered UNIMPLEMENTED by gRPC.
    """
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in _DECLARED.methods:
        make: Callable[..., grpc.RpcMethodHandler] = grpc.unary_unary_rpc_method_handler
        if method.server_streaming:
            make = grpc.unary_stream_rpc_method_handler
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=_message_class(method.input_type.name).FromString,
            response_serializer=_message_class(method.output_type.name).SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service, handlers)
