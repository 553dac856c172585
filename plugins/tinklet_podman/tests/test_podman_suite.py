"""The core's runtime behaviour suite, run against the podman runtime unchanged.

The runtime is opened with no socket option, so tinklet starts and stops its own Podman
service (daemonless, the default); worker processes get the test containers.conf through their
environment, as the tests' Podman needs it here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from podman_support import TEST_CONF, podman

from tinklet_core.testing.runtime_suite import AGENT, RuntimeBehaviourSuite


class TestPodmanBehaviour(RuntimeBehaviourSuite):
    """Every runtime's behaviour, on Podman."""

    runtime_name: ClassVar[str] = "podman"
    image: ClassVar[str] = "tinklet/busybox:latest"
    pulls_through_proxy: ClassVar[bool] = True  # tinklet starts the service with its proxy

    def runtime_options(self) -> dict[str, Any]:
        return {"podman_binary": "podman"}

    def worker_env(self) -> dict[str, str]:
        return {"CONTAINERS_CONF": TEST_CONF}

    def leftovers(self) -> list[str]:
        out = podman(
            "ps", "-a", "--filter", "label=tinklet.action", "--filter", f"label=tinklet.agent={AGENT}",
            "--format", "{{.Names}}",
        )  # fmt: skip
        return out.split()
