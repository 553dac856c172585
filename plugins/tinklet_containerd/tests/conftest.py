"""Fixtures for the containerd plugin's tests: one private containerd per session (never the
host's), with the busybox test image imported from an OCI archive through the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from containerd_support import PrivateContainerd, containerd_missing, containerd_with_test_image, options
from tinklet_containerd.runtime import ContainerdRuntime

from tinklet_core.runtime import RuntimeSettings
from tinklet_core.testing.registry import TestRegistry, registry_tools_missing


@pytest.fixture(scope="session")
def containerd() -> Iterator[PrivateContainerd]:
    """A private containerd holding the test image in namespace ``tinkerbell``."""
    missing = containerd_missing()
    if missing:
        pytest.skip(missing)
    with containerd_with_test_image() as daemon:
        yield daemon


@pytest.fixture(scope="session")
def agent_id() -> str:
    """This session's agent id."""
    return f"test-containerd-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def runtime(containerd: PrivateContainerd, agent_id: str) -> Iterator[ContainerdRuntime]:
    """An opened containerd runtime; the test fails if any container of ours outlives it."""
    opened = ContainerdRuntime(RuntimeSettings(agent_id=agent_id, options=options(containerd)))
    yield opened
    left = opened.leftovers()
    for name in left:
        opened.engine.remove(name)
    opened.close()
    assert left == [], f"containers left behind: {left}"


@pytest.fixture(scope="session")
def registry() -> Iterator[TestRegistry]:
    """The core's test registry (TLS, one login), for the pull tests."""
    missing = registry_tools_missing()
    if missing:
        pytest.skip(missing)
    with TestRegistry() as served:
        yield served


def nerdctl_dir(daemon: PrivateContainerd) -> Path:
    """Where the runtime writes nerdctl's data store for ``daemon``."""
    return daemon.root / "nerdctl"
