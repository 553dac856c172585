"""Fixtures for the podman plugin's tests, against the real Podman on this machine."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from podman_support import (
    AGENT,
    TEST_CONF,
    ServiceProcess,
    leftovers,
    podman_env,
    remove_leftovers,
    start_service,
)
from tinklet_podman.runtime import PodmanRuntime

from tinklet_core.runtime import RuntimeSettings


@pytest.fixture(scope="module", autouse=True)
def containers_conf() -> Iterator[None]:
    """Podman as root here needs the test containers.conf; set for each module of these tests
    and restored after it, so no other test sees it."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/setup installs it)")
    before = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = TEST_CONF
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CONTAINERS_CONF", None)
        else:
            os.environ["CONTAINERS_CONF"] = before


@pytest.fixture(scope="session")
def podman_service() -> Iterator[ServiceProcess]:
    """One Podman service for the action tests, on a private socket, with the test config."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/setup installs it)")
    service = start_service(env=podman_env())
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def runtime(podman_service: ServiceProcess) -> Iterator[PodmanRuntime]:
    """The runtime, opened on the test service; the test agent's leftovers are checked after."""
    opened = PodmanRuntime(RuntimeSettings(agent_id=AGENT, options={"podman_socket": podman_service.url}))
    try:
        yield opened
    finally:
        opened.close()
        left = leftovers()
        remove_leftovers(AGENT)  # so that one failure stays one
        assert left == [], f"containers left behind: {left}"
