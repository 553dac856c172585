"""The core's runtime behaviour suite, run unchanged against the docker runtime."""

from __future__ import annotations

import docker
from tinklet_docker.engine import DEFAULT_URL, tinklet_containers

from tinklet_core.testing.runtime_suite import AGENT, RuntimeBehaviourSuite


class TestDockerBehaviour(RuntimeBehaviourSuite):
    """Every behaviour a runtime must have, on the real dockerd."""

    runtime_name = "docker"
    image = "tinklet/busybox:latest"

    def leftovers(self) -> list[str]:
        """Names of the suite agent's containers still on the daemon."""
        api = docker.APIClient(base_url=DEFAULT_URL, version="auto")
        try:
            return tinklet_containers(api, AGENT)
        finally:
            api.close()
