"""For the behaviour suite through tinklet's pytest plugin::

    TINKLET_CONTAINERD_SOCKET=/run/x/containerd.sock pytest --tinklet-runtime containerd \\
        --tinklet-leftovers tinklet_containerd.testing:leftovers \\
        --tinklet-option containerd-socket=/run/x/containerd.sock

The containerd must hold the busybox-like test image (``docker.io/tinklet/busybox:latest`` by
default) in the namespace.
"""

from __future__ import annotations

import os

from tinklet_containerd.client import DEFAULT_NAMESPACE, DEFAULT_SOCKET


def leftovers(agent_id: str) -> list[str]:
    """Ids of ``agent_id``'s containers on the containerd that ``TINKLET_CONTAINERD_SOCKET``
    (else ``CONTAINERD_ADDRESS``, else the default socket) names, in
    ``TINKLET_CONTAINERD_NAMESPACE`` (default ``tinkerbell``)."""
    from tinklet_containerd.engine import ContainerdEngine

    socket = (
        os.environ.get("TINKLET_CONTAINERD_SOCKET") or os.environ.get("CONTAINERD_ADDRESS") or DEFAULT_SOCKET
    )
    namespace = os.environ.get("TINKLET_CONTAINERD_NAMESPACE") or DEFAULT_NAMESPACE
    engine = ContainerdEngine(socket, namespace)
    try:
        return engine.containers(agent_id)
    finally:
        engine.close()
