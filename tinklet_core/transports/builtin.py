"""The core's own transports, each registered as a built-in plugin (blockable with ``-p no:NAME``).

Adding a built-in transport is one line in :data:`BUILTIN_TRANSPORTS`: the plugin name, then a
:class:`TransportSpec` whose factory is usually :func:`lazy_factory` naming the class, so grpc and
the generated code load only when that transport is chosen.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tinklet_core.hookspecs import hookimpl
from tinklet_core.transports.spec import TransportSettings, TransportSpec

if TYPE_CHECKING:
    from tinklet_core.transports.base import Transport


def lazy_factory(target: str) -> Callable[[TransportSettings], Transport]:
    """A factory for ``"module:Class"`` that imports it when called and passes every
    :class:`TransportSettings` field as a keyword argument (``target=…, identifier=…``)."""
    module_name, _, class_name = target.partition(":")

    def build(settings: TransportSettings) -> Transport:
        cls = getattr(importlib.import_module(module_name), class_name)
        fields = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}
        transport: Transport = cls(**fields)
        return transport

    return build


def _grpc_v2(settings: TransportSettings) -> Transport:
    from tinklet_core.transports.grpc_v2 import GrpcV2Transport  # grpc loads only for server mode

    return GrpcV2Transport(
        settings.target,
        settings.identifier,
        credentials=settings.credentials,
        cancelled=settings.cancelled,
        server_name=settings.server_name,
    )


def _workflow_file(settings: TransportSettings) -> Transport:
    from tinklet_core.transports.workflow_file import WorkflowFileTransport
    from tinklet_core.workflow import load_workflow

    return WorkflowFileTransport(load_workflow(Path(settings.target), agent_id=settings.identifier))


FILE_TRANSPORT = "file"

BUILTIN_TRANSPORTS: tuple[tuple[str, TransportSpec], ...] = (
    ("core-v2", TransportSpec("v2", _grpc_v2, summary="Tink v2 (GetAction) over gRPC")),
    ("core-file", TransportSpec(FILE_TRANSPORT, _workflow_file, summary="a workflow file (tinklet run)")),
)
"""``(plugin name, spec)`` of every transport the core ships."""


@dataclass(frozen=True)
class BuiltinTransport:
    """A built-in plugin that provides one transport."""

    spec: TransportSpec

    @hookimpl
    def tinklet_transports(self) -> list[TransportSpec]:
        """The one transport this plugin carries."""
        return [self.spec]
