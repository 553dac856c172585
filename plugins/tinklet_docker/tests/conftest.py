"""Fixtures for the docker runtime's tests, against the real dockerd at the local socket.

Every test's actions carry this session's own agent id, so the leak check only ever looks at
(and only ever removes) containers these tests made, even while other suites share dockerd.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from tinklet_docker import DockerRuntime
from tinklet_docker.engine import DEFAULT_URL, tinklet_containers

from tinklet_core.runtime import RuntimeSettings
from tinklet_core.testing.registry import TestRegistry, registry_tools_missing


@pytest.fixture(scope="session")
def docker_api() -> Iterator[Any]:
    """A docker-py low-level client of the real daemon, for checks from outside the runtime."""
    api = docker.APIClient(base_url=DEFAULT_URL, version="auto")
    yield api
    api.close()


@pytest.fixture(scope="session")
def agent_id() -> str:
    """This session's agent id: the label that tells our containers from anyone else's."""
    return f"test-docker-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def runtime(docker_api: Any, agent_id: str) -> Iterator[DockerRuntime]:
    """An opened docker runtime; the test fails if any container of ours outlives it."""
    opened = DockerRuntime(RuntimeSettings(agent_id=agent_id))
    yield opened
    opened.close()
    left = tinklet_containers(docker_api, agent_id)
    for name in left:
        docker_api.remove_container(name, force=True)
    assert left == [], f"containers left behind: {left}"


@pytest.fixture(scope="session")
def registry() -> Iterator[TestRegistry]:
    """The core's test registry (TLS, one login), for the pull tests."""
    missing = registry_tools_missing()
    if missing:
        pytest.skip(missing)
    with TestRegistry() as served:
        yield served
