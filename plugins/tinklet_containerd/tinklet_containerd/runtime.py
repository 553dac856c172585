"""The containerd runtime: the core's shared container runtime on containerd's gRPC API.

This module imports only the standard library and tinklet_core, so the plugin's entry-point
module can name :class:`ContainerdRuntime` as its factory at no cost; grpc and the generated
stubs are imported (through :mod:`tinklet_containerd.engine`) when the runtime is opened.

What is containerd's own: short image names are Docker Hub's (containerd has no default
registry), and ``--containerd-keep-failed`` keeps a failed action's container for ``nerdctl
logs`` as the tink agent does (tinklet's own contract, removal, stays the default).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tinklet_containerd.reference import normalise
from tinklet_core.containers.capabilities import lacking_in_peer
from tinklet_core.containers.runtime import ContainerRuntime
from tinklet_core.errors import RuntimeUnavailable
from tinklet_core.model import Outcome, State
from tinklet_core.runtime import RuntimeSettings

if TYPE_CHECKING:
    from tinklet_containerd.engine import ContainerdEngine

log = logging.getLogger("tinklet.containerd")

#: What an action that does not ask for the host's network gets: a CNI network, or loopback only.
NETWORK_MODES = ("cni", "none")


class ContainerdRuntime(ContainerRuntime):
    """Runs actions as containerd containers; opened by the core with the resolved settings.

    Options (``settings.options``): ``containerd_socket``, ``containerd_namespace``,
    ``containerd_snapshotter``, ``containerd_certs_dir``, ``containerd_data_root`` (nerdctl's
    data root, where the json logs go), ``containerd_keep_failed``, ``containerd_network``
    (:data:`NETWORK_MODES`), ``containerd_cni_path``, ``containerd_cni_conf_dir``. Opening it fails with
    :class:`~tinklet_core.errors.RuntimeUnavailable` when containerd does not answer and, when
    ``settings.agent_id`` is set, removes the containers an earlier run of that agent left.
    """

    engine: ContainerdEngine

    def __init__(self, settings: RuntimeSettings) -> None:
        from tinklet_containerd.client import DEFAULT_NAMESPACE, DEFAULT_SOCKET
        from tinklet_containerd.cni import DEFAULT_BIN_DIRS, DEFAULT_CONF_DIR, Cni, split_path
        from tinklet_containerd.engine import ContainerdEngine
        from tinklet_containerd.hosts import DEFAULT_CERTS_DIR
        from tinklet_containerd.images import DEFAULT_SNAPSHOTTER
        from tinklet_containerd.jsonlog import DEFAULT_DATA_ROOT
        from tinklet_containerd.pull import Puller

        options = settings.options
        network = str(options.get("containerd_network") or "cni")
        if network not in NETWORK_MODES:
            raise RuntimeUnavailable(f"--containerd-network must be one of {', '.join(NETWORK_MODES)}")
        cni = Cni(
            split_path(options.get("containerd_cni_path") or DEFAULT_BIN_DIRS),
            str(options.get("containerd_cni_conf_dir") or DEFAULT_CONF_DIR),
        )
        engine = ContainerdEngine(
            str(options.get("containerd_socket") or DEFAULT_SOCKET),
            str(options.get("containerd_namespace") or DEFAULT_NAMESPACE),
            str(options.get("containerd_snapshotter") or DEFAULT_SNAPSHOTTER),
            str(options.get("containerd_data_root") or DEFAULT_DATA_ROOT),
            cni=cni,
            networking=network == "cni",
        )
        engine.puller = Puller(
            engine.store, str(options.get("containerd_certs_dir") or DEFAULT_CERTS_DIR), settings.proxy
        )
        self.keep_failed = bool(options.get("containerd_keep_failed"))
        try:
            super().__init__(settings, engine, log)
        except BaseException:
            engine.close()
            raise

    def ungrantable_capabilities(self) -> tuple[str, ...]:
        """The container's spec (:mod:`tinklet_containerd.ocispec`) grants a privileged container
        what tinklet's own bounding set allows: what containerd's lacks of those (read through
        its socket's peer, when it runs in tinklet's PID namespace)."""
        return lacking_in_peer(self.engine.client.socket)

    def resolve_image(self, image: str) -> str:
        """``image`` as containerd names it: ``busybox`` is ``docker.io/library/busybox:latest``."""
        return normalise(image)

    def keep_container(self, outcome: Outcome) -> bool:
        """With ``--containerd-keep-failed``, a failed action's container stays for
        ``nerdctl logs``/``nerdctl rm``."""
        return self.keep_failed and outcome.state is State.FAILED
