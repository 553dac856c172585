"""The core's runtime behaviour suite, run unchanged against the containerd runtime on a
private containerd (worker processes get its socket through the command line)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from containerd_support import PrivateContainerd, options

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


LEFTOVERS = "tinklet_containerd.testing:leftovers"


def test_pytest_tinklet_runtime_containerd_passes_the_suite(containerd: PrivateContainerd) -> None:
    """``pytest --tinklet-runtime containerd`` (tinklet's pytest plugin, no test class) passes."""
    settings = options(containerd)
    flags = [
        arg
        for key, value in settings.items()
        for arg in ("--tinklet-option", f"{key.replace('_', '-')}={value}")
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(containerd.root),
         "--tinklet-runtime", "containerd", "--tinklet-leftovers", LEFTOVERS, *flags],
        cwd=containerd.root, env={**os.environ, "TINKLET_CONTAINERD_SOCKET": containerd.socket},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1] and "failed" not in done.stdout.splitlines()[-1]
