"""A real dockerd pull stream, from the project's TLS registry with a login, becomes progress."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

from tinklet_core.model import PullPhase, PullProgress
from tinklet_core.pull_stream import PullStreamProgress
from tinklet_core.testing.registry import TestRegistry, registry_tools_missing

LAYER_BYTES = 3 * 1024 * 1024


def _docker_missing() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (scripts/setup installs it)"
    answered = subprocess.run(["docker", "version"], capture_output=True, check=False)
    return None if answered.returncode == 0 else "dockerd is not running (scripts/setup starts it)"


def import_random_image(name: str) -> None:
    """A one-layer image of random bytes, so no engine has its layer and a pull downloads it."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        info = tarfile.TarInfo("noise.bin")
        info.size = LAYER_BYTES
        archive.addfile(info, io.BytesIO(os.urandom(LAYER_BYTES)))
    subprocess.run(["docker", "import", "-", name], input=data.getvalue(), capture_output=True, check=True)


def test_a_docker_pull_stream_reports_bytes_of_its_layers() -> None:
    reason = registry_tools_missing() or _docker_missing()
    if reason:
        pytest.skip(reason)
    import docker

    local = f"tinklet-test/progress-{uuid.uuid4().hex[:10]}:1"
    seen: list[PullProgress] = []
    import_random_image(local)
    try:
        with TestRegistry() as registry:
            image = registry.push(local, local.split("/", 1)[1])
            subprocess.run(["docker", "image", "rm", image, local], capture_output=True, check=True)
            api = docker.APIClient(version="auto")
            try:
                stream = PullStreamProgress(image, seen.append, interval=0)
                auth = {"username": registry.username, "password": registry.password}
                for event in api.pull(image, stream=True, decode=True, auth_config=auth):
                    stream.feed(event)
                final = stream.progress()
            finally:
                api.close()
                subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)
    finally:
        subprocess.run(["docker", "image", "rm", local], capture_output=True, check=False)
    assert seen and all(p.phase is PullPhase.PROGRESS and p.image == image for p in seen)
    assert final.unit == "bytes" and final.total >= LAYER_BYTES // 2, final  # compressed size
    assert final.current == final.total, "every layer downloaded"
    assert len({p.current for p in seen}) > 1, "progress moved while downloading"
    assert [p.current for p in seen] == sorted(p.current for p in seen), "bytes only grow"


def test_a_finished_layer_counts_whole_without_its_download_complete_event() -> None:
    """Seen from a loaded dockerd: a layer's last event before ``Pull complete`` was an early
    ``Downloading``; the pull's final progress must still read every byte, not 1 %."""
    seen: list[PullProgress] = []
    stream = PullStreamProgress("registry.example/app:1", seen.append, interval=0)
    events = [
        {"status": "Pulling from app", "id": "1"},
        {"status": "Pulling fs layer", "id": "aa"},
        {"status": "Downloading", "id": "aa", "progressDetail": {"current": 32768, "total": 3146862}},
        {"status": "Pull complete", "id": "aa"},
    ]
    for event in events:
        stream.feed(event)
    final = stream.progress()
    assert (final.current, final.total, final.unit) == (3146862, 3146862, "bytes")
    assert seen[-1].current == 3146862
