"""The core's own transports, each registered as a built-in plugin (blockable with ``-p no:NAME``).

Adding a built-in transport is one line in :data:`BUILTIN_TRANSPORTS`: the plugin name, then a
:class:`TransportSpec` whose factory is usually :func:`lazy_factory` naming the class, so grpc and
the generated code load only when that transport is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tinklet_core.hookspecs import hookimpl
from tinklet_core.lazy_factory import LazyFactory
from tinklet_core.transports.spec import TransportSettings, TransportSpec

if TYPE_CHECKING:
    from tinklet_core.transports.base import Transport


def lazy_factory(target: str) -> Callable[[TransportSettings], Transport]:
    """A factory for ``"module:callable"`` that imports it only when called and calls it with the
    :class:`TransportSettings` (a transport class's ``from_settings``, or a function)."""
    return LazyFactory(target)


def _workflow_file(settings: TransportSettings) -> Transport:
    from tinklet_core.transports.workflow_file import WorkflowFileTransport
    from tinklet_core.workflow import load_workflow

    return WorkflowFileTransport(load_workflow(Path(settings.target), agent_id=settings.identifier))


FILE_TRANSPORT = "file"

BUILTIN_TRANSPORTS: tuple[tuple[str, TransportSpec], ...] = (
    (
        "core-auto",
        TransportSpec(
            "auto",
            lazy_factory("tinklet_core.transports.auto:AutoTransport.from_settings"),
            summary="detects the server's generation: v2, then v1, then v1-legacy",
        ),
    ),
    (
        "core-v2",
        TransportSpec(
            "v2",
            lazy_factory("tinklet_core.transports.grpc_v2:GrpcV2Transport.from_settings"),
            summary="Tink v2 (GetAction) over gRPC",
        ),
    ),
    (
        "core-v1",
        TransportSpec(
            "v1",
            lazy_factory("tinklet_core.transports.grpc_v1:GrpcV1Transport.from_settings"),
            summary="tink v0.9-v0.12 (GetWorkflowContexts) over gRPC",
        ),
    ),
    (
        "core-v1-legacy",
        TransportSpec(
            "v1-legacy",
            lazy_factory("tinklet_core.transports.grpc_v1:legacy_from_settings"),
            summary="tink v0.6-v0.8: v1 under the old package, MAC/IP resolved to a hardware id",
        ),
    ),
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
