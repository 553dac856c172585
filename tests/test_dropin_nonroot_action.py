"""An action image whose ``USER`` is a numeric non-root uid writes its own failure files: the
container layer asks the engine for the image's user and that uid owns the action's private
``/tinkerbell`` directory (0700), so no other uid can write there. On Docker, with a real worker
process against the test Tink server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinklet_core.action_failure import numeric_owner
from tinklet_core.model import State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

BUSYBOX = "tinklet/busybox:latest"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (dockerd)")


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def image_as(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The busybox test image committed with ``USER 65534``."""
    tags: dict[str, str] = {}
    container = docker("create", BUSYBOX, "true").stdout.strip()
    try:
        for user in ("65534",):
            tag = f"tinklet/busybox-user-{user}:{uuid.uuid4().hex[:8]}"
            docker("commit", "--change", f"USER {user}", container, tag)
            tags[user] = tag
        yield tags
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        for tag in tags.values():
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


SCRIPT = (
    "ls -ldn /tinkerbell | sed 's/^/SEEN /'; echo NotForRoot > /tinkerbell/failure-reason; "
    "echo 'written as uid 65534' > /tinkerbell/failure-message; exit 4"
)


def run_one_action(image: str, state: Path) -> tuple[list[State], str, str]:
    """One failing action in ``image`` run by a docker worker: its states, the FAILED report's
    message, and the worker's output."""
    agent = f"nonroot-{uuid.uuid4().hex[:8]}"
    workflow = parse_workflow(
        {"name": "nonroot", "tasks": [{"name": "t", "actions": [
            {"name": "a", "image": image, "command": ["sh", "-c", SCRIPT]}]}]},
        agent_id=agent,
    )  # fmt: skip
    with TinkServer([workflow], agent) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "tinklet_core", "--runtime", "docker", "--tink", server.address,
             "--identifier", agent, "--max-backoff", "0.5", "--state-dir", str(state)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            server.wait_until(lambda: any(s.is_final for s in server.states_of("t/a")), 60)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=15)
        failed = [r.message for r in server.reports if r.state is State.FAILED]
        return server.states_of("t/a"), (failed or [""])[0], output


def test_a_numeric_user_writes_its_failure_files_and_owns_the_directory_alone(
    image_as: dict[str, str], tmp_path: Path
) -> None:
    states, message, output = run_one_action(image_as["65534"], tmp_path / "state")
    assert states == [State.RUNNING, State.FAILED], output
    assert message.startswith("NotForRoot: written as uid 65534"), message
    [seen] = [line for line in output.splitlines() if "| SEEN d" in line]
    assert "drwx------" in seen and " 65534 " in seen, "the action's uid alone may write: " + seen


def test_only_a_numeric_non_root_user_gets_the_directory() -> None:
    """A named ``USER`` would need the image's /etc/passwd: its directory stays root's."""
    assert numeric_owner("65534") == 65534
    assert numeric_owner("1000:100") == 1000
    assert numeric_owner("nobody") is None
    assert numeric_owner("0") is None and numeric_owner("") is None
