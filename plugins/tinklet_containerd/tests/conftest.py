"""Fixtures for the containerd plugin's tests: one private containerd per session (never the
host's), with the busybox test image imported from an OCI archive through the API."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from containerd_support import PrivateContainerd, containerd_with_test_image
from tinklet_containerd.runtime import ContainerdRuntime

from tinklet_core.runtime import RuntimeSettings
from tinklet_core.testing.registry import TestRegistry, registry_tools_missing


def containerd_missing() -> str | None:
    """Why no private containerd can run here, or ``None``."""
    missing = [
        tool for tool in ("containerd", "ctr", "runc", "containerd-shim-runc-v2") if not shutil.which(tool)
    ]
    return f"{', '.join(missing)} not installed (scripts/setup installs containerd)" if missing else None


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


def options(daemon: PrivateContainerd, **more: object) -> dict[str, object]:
    """The runtime options that point tinklet at ``daemon``, with its own certs.d and CNI
    configuration directories. Actions that do not ask for the host's network get loopback only
    (``containerd_network=none``): a CNI network would change the host's network, which only
    ``test_containerd_network`` does, in a network namespace of its own."""
    return {
        "containerd_socket": daemon.socket,
        "containerd_data_root": str(daemon.root / "nerdctl"),
        "containerd_certs_dir": str(daemon.root / "certs.d"),
        "containerd_cni_conf_dir": str(daemon.root / "cni.d"),
        "containerd_network": "none",
        **more,
    }


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
