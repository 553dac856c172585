"""What tinklet's runtime behaviour suite needs to know about the Docker runtime.

``pytest --tinklet-runtime docker --tinklet-leftovers tinklet_docker.testing:leftovers``
"""

from __future__ import annotations

import os

from tinklet_docker.engine import DEFAULT_URL, tinklet_containers


def leftovers(agent_id: str) -> list[str]:
    """Names of the containers labelled ``tinklet.agent=AGENT_ID`` that still exist on the
    daemon at ``DOCKER_HOST`` (else the local socket)."""
    import docker

    api = docker.APIClient(base_url=os.environ.get("DOCKER_HOST") or DEFAULT_URL, version="auto")
    try:
        return tinklet_containers(api, agent_id)
    finally:
        api.close()
