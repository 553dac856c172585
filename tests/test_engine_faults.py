"""Fault suite: the worker process while its container engine dies and comes back (issue 12).

Real daemons only: a private dockerd this test starts, SIGKILLs mid-action and restarts
(:mod:`private_dockerd`; the shared dockerd is never touched), and the private
``podman system service`` that tinklet itself starts, SIGKILLed mid-action. In both the running
action must be reported with its container's true outcome, later actions (one handed out
while the engine is down) must run and succeed, and nothing tinklet created may be left.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from private_dockerd import PrivateDockerd, daemon_with_test_image

from tinklet_core.model import State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

IMAGE = "tinklet/busybox:latest"
PODMAN_TEST_CONF = "/etc/containers/tinklet-test.conf"


def workflow(agent: str) -> dict[str, object]:
    """A long action (the engine dies while it runs) and a short one after it."""
    script = "echo started; sleep 3; echo finished"
    return {
        "name": "wf",
        "tasks": [{"name": "t", "actions": [
            {"name": "long", "image": IMAGE, "command": ["sh", "-c", script], "timeout": 120},
            {"name": "later", "image": IMAGE, "command": ["echo", "later ran"], "timeout": 120},
        ]}],
    }  # fmt: skip


def start_worker(
    server: TinkServer, agent: str, *runtime: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """The tinklet CLI as a user runs it, output to a pipe (read at the end)."""
    command = [
        sys.executable, "-m", "tinklet_core", "--tink", server.address, "--identifier", agent,
        "--max-backoff", "0.5", *runtime,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def stop_worker(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM the worker; its exit code and everything it logged."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return process.returncode, output


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def final_states(server: TinkServer, action: str) -> list[State]:
    """The final states the server recorded for ``action``."""
    return [state for state in server.states_of(action) if state.is_final]


@pytest.fixture
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    """A private dockerd with the test image, started; stopped and removed after the test."""
    with daemon_with_test_image(tmp_path_factory.mktemp("dockerd")) as daemon:
        yield daemon


def test_dockerd_killed_mid_action_and_back_10s_later(dockerd: PrivateDockerd) -> None:
    agent = f"fault-docker-{uuid.uuid4().hex[:8]}"
    with TinkServer(parse_workflow(workflow(agent), agent_id=agent), agent) as server:
        worker = start_worker(server, agent, "--runtime", "docker", "--docker-host", dockerd.url)
        try:
            mine = ["ps", "-q", "--filter", f"label=tinklet.agent={agent}"]
            assert wait_for(lambda: bool(dockerd.docker(*mine).stdout.strip()), 30), (
                "the long action never ran"
            )
            dockerd.kill()  # mid-action: its container runs on under containerd and exits 0
            time.sleep(10)
            assert final_states(server, "t/long") == []  # not judged by the broken connection
            server.get_action_delay = 3.0  # the next action is handed out while dockerd is down again
            dockerd.start()
            assert wait_for(lambda: final_states(server, "t/long") != [], 30)
            dockerd.kill()
            assert wait_for(lambda: State.RUNNING in server.states_of("t/later"), 30)
            time.sleep(2)
            assert final_states(server, "t/later") == []  # waits for the engine, does not fail
            server.get_action_delay = 0.0
            dockerd.start()
            assert wait_for(lambda: final_states(server, "t/later") != [], 30)
        finally:
            code, output = stop_worker(worker)
            print(output)  # shown by pytest -rP: the outage as a user reads it
        assert final_states(server, "t/long") == [State.SUCCESS], output
        assert final_states(server, "t/later") == [State.SUCCESS], output
        assert "later ran" in output
        assert dockerd.containers() == [], "a container was left on the daemon"
    assert code == 0
    assert output.count("waiting for the engine to come back") == 2, output  # once per outage


def _podman_service_pid(output_so_far: Callable[[], str]) -> int | None:
    found = re.search(r"started by tinklet \(pid (\d+)\)", output_so_far())
    return int(found.group(1)) if found else None


@pytest.mark.skipif(
    shutil.which("podman") is None, reason="podman is not installed (scripts/setup installs it)"
)
def test_the_private_podman_service_killed_mid_action_is_restarted(tmp_path: Path) -> None:
    if Path("/run/podman/podman.sock").exists():
        pytest.skip("a system Podman socket exists: tinklet would use it instead of its own service")
    agent = f"fault-podman-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CONTAINERS_CONF": PODMAN_TEST_CONF}
    log_path = tmp_path / "worker.log"
    with TinkServer(parse_workflow(workflow(agent), agent_id=agent), agent) as server:
        command = [
            sys.executable, "-m", "tinklet_core", "--tink", server.address, "--identifier", agent,
            "--max-backoff", "0.5", "--runtime", "podman", "--xdg-runtime-dir", str(tmp_path / "none"),
        ]  # fmt: skip
        with open(log_path, "w") as log:
            worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            assert wait_for(lambda: State.RUNNING in server.states_of("t/long"), 60), log_path.read_text()
            pid = _podman_service_pid(log_path.read_text)
            assert pid is not None, log_path.read_text()
            assert wait_for(lambda: "long | started" in log_path.read_text(), 30)
            os.kill(pid, signal.SIGKILL)  # the action's container runs on under conmon
            assert wait_for(lambda: final_states(server, "t/later") != [], 60), log_path.read_text()
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            code = worker.wait(30)
        output = log_path.read_text()
    assert final_states(server, "t/long") == [State.SUCCESS], output
    assert final_states(server, "t/later") == [State.SUCCESS], output
    assert "wf/t/long | finished" in output  # written while the service was dead, read from its log
    assert f"podman system service tinklet started (pid {pid}) died" in output
    assert "podman system service restarted by tinklet" in output
    assert "had already exited" not in output  # the restarted service was alive at exit
    assert "stopped the podman system service" in output
    assert code == 0
    leftover = subprocess.run(
        ["podman", "ps", "-aq", "--filter", f"label=tinklet.agent={agent}"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.split()  # fmt: skip
    assert leftover == [], "a container was left in the Podman store"
