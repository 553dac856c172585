"""Two ``tinklet run``s on one host without ``--identifier`` are both agent ``local``: the one
that starts second must not take the first one's running container for a crashed run's
leftover, yet a stopped leftover is still cleaned up. Real processes on a real dockerd: a private
one, as any other ``tinklet run`` on the shared daemon (another test, in parallel) is agent
``local`` too and would clean up (or leave) these tests' containers."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from private_dockerd import PrivateDockerd, daemon_with_test_image

from tests.plugin_kit import tinklet, write_workflow
from tinklet_core.app import LOCAL_AGENT
from tinklet_core.containers.engine import ACTION_LABEL, AGENT_LABEL

IMAGE = "tinklet/busybox:latest"


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    """A private dockerd with the test image: agent ``local`` has it to itself."""
    with daemon_with_test_image(tmp_path_factory.mktemp("dockerd")) as daemon:
        yield daemon


@pytest.fixture
def docker_client(dockerd: PrivateDockerd) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=dockerd.url)
    yield client
    client.close()


def local_containers(client: docker.DockerClient, marker: str) -> list[docker.models.containers.Container]:
    """Agent ``local``'s containers that carry this test's ``marker`` label."""
    labels = [ACTION_LABEL, f"{AGENT_LABEL}={LOCAL_AGENT}", f"test.marker={marker}"]
    return client.containers.list(all=True, filters={"label": labels})


def test_a_second_run_leaves_the_first_runs_container_alone(
    tmp_path: Path, dockerd: PrivateDockerd, docker_client: docker.DockerClient
) -> None:
    release = tmp_path / "release"
    release.mkdir()
    slow = {
        "name": "slow",
        "image": IMAGE,
        "timeout": 60,
        "command": [
            "sh",
            "-c",
            "echo started; while [ ! -e /release/go ]; do sleep 0.1; done; echo finished",
        ],
        "volumes": [f"{release}:/release"],
    }
    first = subprocess.Popen(
        [sys.executable, "-m", "tinklet_core", "run", str(write_workflow(tmp_path / "first.yaml", slow)),
         "--runtime", "docker", "--docker-host", dockerd.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not docker_client.containers.list(filters={"label": [f"{AGENT_LABEL}={LOCAL_AGENT}"]}):
            assert time.monotonic() < deadline, "the first run's container never started"
            assert first.poll() is None, first.communicate()
            time.sleep(0.1)
        quick = {"name": "quick", "image": IMAGE, "command": ["echo", "second"]}
        second = tinklet(
            "run", str(write_workflow(tmp_path / "second.yaml", quick)),
            "--runtime", "docker", "--docker-host", dockerd.url,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr
        assert "it still runs, perhaps for another tinklet run" in second.stderr
        (release / "go").touch()
        _out, err = first.communicate(timeout=60)
    finally:
        (release / "go").touch()
        if first.poll() is None:
            first.terminate()
            first.wait(30)
    assert first.returncode == 0, err
    assert "local/t/slow | finished" in err
    assert "removed container" not in err


def test_a_stopped_leftover_of_agent_local_is_removed_by_the_next_run(
    tmp_path: Path, dockerd: PrivateDockerd, docker_client: docker.DockerClient
) -> None:
    marker = uuid.uuid4().hex[:8]
    labels = {ACTION_LABEL: "crashed/t/a", AGENT_LABEL: LOCAL_AGENT, "test.marker": marker}
    left = docker_client.containers.run(IMAGE, ["true"], labels=labels, detach=True)
    try:
        left.wait(timeout=30)
        quick = {"name": "quick", "image": IMAGE, "command": ["echo", "next"]}
        result = tinklet(
            "run", str(write_workflow(tmp_path / "next.yaml", quick)),
            "--runtime", "docker", "--docker-host", dockerd.url,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"removed container {left.name} left by an earlier run for agent local" in result.stderr
        assert local_containers(docker_client, marker) == []
    finally:
        for container in local_containers(docker_client, marker):
            container.remove(force=True)
