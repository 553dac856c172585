"""The ``containerd`` runtime for tinklet: Tinkerbell actions as containerd containers, through
containerd's gRPC API (no ``ctr``, no ``nerdctl``), as CaptainOS runs them.

This is the plugin's entry-point module (group ``tinklet``, name ``containerd``). Importing it
is cheap, as every tinklet start imports it: it pulls in only the core's plugin records. The
spec's factory is a :class:`~tinklet_core.lazy_factory.LazyFactory` naming
:class:`tinklet_containerd.runtime.ContainerdRuntime`, so the runtime module, the core's
container layer, grpc and the generated containerd stubs (:mod:`tinklet_containerd.api`) are
imported only when ``--runtime containerd`` is opened. Action execution is
the core's shared container layer (:mod:`tinklet_core.containers`); this plugin is the engine
adapter: images (:mod:`~tinklet_containerd.images`, :mod:`~tinklet_containerd.pull`), the OCI
spec (:mod:`~tinklet_containerd.ocispec`), FIFO output (:mod:`~tinklet_containerd.fifo_output`)
and nerdctl's json log and labels (:mod:`~tinklet_containerd.jsonlog`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinklet_core.hookspecs import hookimpl
from tinklet_core.lazy_factory import LazyFactory
from tinklet_core.runtime import RuntimeOption, RuntimeSpec

if TYPE_CHECKING:
    from tinklet_containerd.runtime import ContainerdRuntime

__all__ = ["OPTIONS", "ContainerdRuntime", "tinklet_runtimes"]

OPTIONS = (
    RuntimeOption(
        "containerd-socket",
        "containerd's gRPC socket",
        default="/run/containerd/containerd.sock",
        env_fallback="CONTAINERD_ADDRESS",
    ),
    RuntimeOption(
        "containerd-namespace", "containerd namespace for images and containers", default="tinkerbell"
    ),
    RuntimeOption(
        "containerd-snapshotter", "snapshotter for unpacked images and containers", default="overlayfs"
    ),
    RuntimeOption(
        "containerd-certs-dir",
        "registry hosts configuration (hosts.toml per registry: mirrors, CAs, insecure registries)",
        default="/etc/containerd/certs.d",
    ),
    RuntimeOption(
        "containerd-data-root",
        "nerdctl's data root, where each container's json log is written for nerdctl logs",
        default="/var/lib/nerdctl",
    ),
    RuntimeOption(
        "containerd-network",
        "what an action without the host's network gets: cni (a network of its own from the CNI "
        "plugins, as the tink agent does) or none (loopback only)",
        default="cni",
    ),
    RuntimeOption(
        "containerd-cni-path",
        "directories holding the CNI plugins, colon-separated",
        default="/opt/cni/bin:/usr/lib/cni",
    ),
    RuntimeOption(
        "containerd-cni-conf-dir",
        "CNI network configurations (the first is used; without any, a bridge named tinklet0)",
        default="/etc/cni/net.d",
    ),
    RuntimeOption(
        "containerd-keep-failed",
        "keep a failed action's container (for nerdctl logs / nerdctl rm) instead of removing it",
        kind=bool,
        default=False,
    ),
)


@hookimpl
def tinklet_runtimes() -> list[RuntimeSpec]:
    """One runtime, ``containerd``, with its socket, namespace and related options."""
    summary = "containers on containerd's gRPC API (what CaptainOS runs)"
    factory = LazyFactory("tinklet_containerd.runtime:ContainerdRuntime", hooks=("tinklet_execute_action",))
    return [RuntimeSpec("containerd", factory, summary, options=OPTIONS)]


def __getattr__(name: str) -> Any:
    """``from tinklet_containerd import ContainerdRuntime`` imports the runtime module only then."""
    if name == "ContainerdRuntime":
        from tinklet_containerd.runtime import ContainerdRuntime

        return ContainerdRuntime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
