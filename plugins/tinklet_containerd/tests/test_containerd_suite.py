"""The core's runtime behaviour suite, run unchanged against the containerd runtime on a
private containerd (worker processes get its socket through the command line)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import options
from containerd_support import PrivateContainerd

from tinklet_core.testing.runtime_suite import AGENT, RuntimeBehaviourSuite


class TestContainerdBehaviour(RuntimeBehaviourSuite):
    """Every behaviour a runtime must have, on containerd."""

    runtime_name = "containerd"
    image = "tinklet/busybox:latest"
    pulls_through_proxy = True  # tinklet pulls itself (client-side), through its own proxy

    @pytest.fixture(autouse=True)
    def _daemon(self, containerd: PrivateContainerd) -> None:
        self.daemon = containerd

    def runtime_options(self) -> dict[str, Any]:
        return options(self.daemon)

    def cli_options(self) -> list[str]:
        return [f"--{key.replace('_', '-')}={value}" for key, value in options(self.daemon).items()]

    def leftovers(self) -> list[str]:
        """Ids of the suite agent's containers still in the namespace."""
        listed = self.daemon.ctr("containers", "ls", "-q", f'labels."tinklet.agent"=={AGENT}')
        return listed.stdout.split()
