"""Worker mode waits for an engine that is not up yet (issue 22); a misconfiguration still ends it.

Real engines only: a private dockerd (:mod:`private_dockerd`) that is down when the worker
starts, and a private ``podman system service`` whose socket does not exist yet. The test Tink
server's call log shows that the worker asked for nothing before its engine answered.
"""

from __future__ import annotations

import os
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
from test_engine_faults import final_states, wait_for
from tinklet_docker.runtime import DockerRuntime

from tinklet_core.errors import EngineNotReady, RuntimeUnavailable
from tinklet_core.model import State
from tinklet_core.runtime import RuntimeSettings
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

IMAGE = "tinklet/busybox:latest"
PODMAN_TEST_CONF = "/etc/containers/tinklet-test.conf"
MAX_BACKOFF = 2.0
WAITING = "waiting for it (retrying at most"
RECOVERED = "the container engine answers now; asking for work"


def workflow() -> dict[str, object]:
    return {
        "name": "wf",
        "tasks": [{"name": "t", "actions": [
            {"name": "hello", "image": IMAGE, "command": ["echo", "engine was waited for"], "timeout": 60},
        ]}],
    }  # fmt: skip


def start_worker(server: TinkServer, agent: str, log_path: Path, *runtime: str) -> subprocess.Popen[str]:
    """The tinklet CLI as a supervisor starts it, its output in ``log_path``."""
    command = [
        sys.executable, "-m", "tinklet_core", "--tink", server.address, "--identifier", agent,
        "--max-backoff", str(MAX_BACKOFF), *runtime,
    ]  # fmt: skip
    env = {**os.environ, "CONTAINERS_CONF": PODMAN_TEST_CONF}
    with open(log_path, "w") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)


def stop(worker: subprocess.Popen[str]) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    return worker.wait(30)


def assert_waited_then_ran(
    server: TinkServer, worker: subprocess.Popen[str], log_path: Path, bring_up: Callable[[], None]
) -> None:
    """The worker logs the wait once, asks the server for nothing while it waits, and runs the
    workflow within ``MAX_BACKOFF`` seconds (plus the runtime's opening) of ``bring_up``."""
    assert wait_for(lambda: WAITING in log_path.read_text(), 30), log_path.read_text()
    time.sleep(2 * MAX_BACKOFF)  # several retries while the engine is down
    assert worker.poll() is None, log_path.read_text()
    assert server.calls == [], "the worker asked for work before its engine answered"
    bring_up()
    answered = time.monotonic()
    assert wait_for(lambda: server.calls != [], MAX_BACKOFF + 5), log_path.read_text()
    first_call = server.calls[0].at
    late = first_call - answered
    assert late <= MAX_BACKOFF + 3, f"asked {late:.1f} s after the engine answered"
    assert wait_for(lambda: State.SUCCESS in server.states_of("t/hello"), 60), log_path.read_text()
    output = log_path.read_text()
    assert output.count(WAITING) == 1, output
    assert output.count(RECOVERED) == 1, output
    assert "engine was waited for" in output
    assert final_states(server, "t/hello") == [State.SUCCESS]


@pytest.fixture
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    """A private dockerd with the test image, killed (its socket file stays, as after a crash)."""
    with daemon_with_test_image(tmp_path_factory.mktemp("dockerd")) as daemon:
        daemon.kill()
        yield daemon


def test_worker_started_while_dockerd_is_down_waits_then_runs(
    dockerd: PrivateDockerd, tmp_path: Path
) -> None:
    agent = f"wait-docker-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "worker.log"
    with TinkServer(parse_workflow(workflow(), agent_id=agent), agent) as server:
        worker = start_worker(server, agent, log_path, "--runtime", "docker", "--docker-host", dockerd.url)
        try:
            assert_waited_then_ran(server, worker, log_path, dockerd.start)
        finally:
            code = stop(worker)
    assert code == 0, log_path.read_text()
    assert "Connection refused; waiting for it" in log_path.read_text()  # the stale socket of a crash


@pytest.mark.skipif(
    shutil.which("podman") is None, reason="podman is not installed (scripts/setup installs it)"
)
def test_worker_waits_for_a_podman_socket_that_does_not_exist_yet(tmp_path: Path) -> None:
    agent = f"wait-podman-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "worker.log"
    socket = tmp_path / "run" / "podman.sock"
    services: list[subprocess.Popen[bytes]] = []

    def start_service() -> None:
        socket.parent.mkdir()
        command = ["podman", "system", "service", "--time=0", f"unix://{socket}"]
        environment = {**os.environ, "CONTAINERS_CONF": PODMAN_TEST_CONF}
        quiet = subprocess.DEVNULL
        services.append(subprocess.Popen(command, stdin=quiet, stdout=quiet, stderr=quiet, env=environment))
        assert wait_for(socket.exists, 15), "podman system service did not create its socket"

    with TinkServer(parse_workflow(workflow(), agent_id=agent), agent) as server:
        worker = start_worker(server, agent, log_path, "--runtime", "podman", "--podman-socket", str(socket))
        try:
            assert_waited_then_ran(server, worker, log_path, start_service)
        finally:
            code = stop(worker)
            for service in services:
                service.terminate()
                service.wait(15)
    assert code == 0, log_path.read_text()
    assert "No such file or directory; waiting for it" in log_path.read_text()


def test_sigterm_while_waiting_for_the_engine_exits_0_at_once(tmp_path: Path) -> None:
    agent = f"wait-stop-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "worker.log"
    absent = f"unix://{tmp_path / 'docker.sock'}"
    with TinkServer(parse_workflow(workflow(), agent_id=agent), agent) as server:
        worker = start_worker(server, agent, log_path, "--runtime", "docker", "--docker-host", absent)
        try:
            assert wait_for(lambda: WAITING in log_path.read_text(), 30), log_path.read_text()
            time.sleep(0.5)
            worker.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            code = worker.wait(30)
            took = time.monotonic() - sent
        finally:
            stop(worker)
        assert server.calls == []
    assert code == 0, log_path.read_text()
    assert took <= 1.0, f"exited {took:.2f} s after SIGTERM"
    assert "tinklet stopped" in log_path.read_text()


def test_a_socket_path_that_is_a_regular_file_ends_the_worker_at_once(tmp_path: Path) -> None:
    agent = f"wait-file-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "worker.log"
    regular = tmp_path / "docker.sock"
    regular.write_text("not a socket")
    with TinkServer(parse_workflow(workflow(), agent_id=agent), agent) as server:
        worker = start_worker(
            server, agent, log_path, "--runtime", "docker", "--docker-host", f"unix://{regular}"
        )
        try:
            code = worker.wait(20)
        finally:
            stop(worker)
        assert server.calls == []
    output = log_path.read_text()
    assert code == 2, output
    assert f"{regular} is not a socket; waiting cannot fix that" in output
    assert WAITING not in output
    assert "Traceback" not in output


def test_tinklet_run_fails_fast_without_its_engine(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        f"version: '0.1'\nname: wf\nglobal_timeout: 60\ntasks:\n- name: t\n  worker: local\n  actions:\n"
        f"  - name: hello\n    image: {IMAGE}\n    timeout: 60\n"
    )
    absent = f"unix://{tmp_path / 'docker.sock'}"
    result = subprocess.run(
        [sys.executable, "-m", "tinklet_core", "run", "--runtime", "docker", "--docker-host", absent,
         str(tmp_path / "wf.yaml")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"tinklet: error: docker daemon at {absent} is not reachable: No such file or directory"]


@pytest.mark.parametrize(
    ("url", "waits"),
    [
        ("tcp://127.0.0.1:1", True),  # a TCP daemon not listening yet
        ("unix://{tmp}/run/docker.sock", True),  # not even its directory yet
        ("unix://{tmp}/file/docker.sock", False),  # a path through a regular file
        ("unix://{tmp}", False),  # a directory is no socket
        ("bogus://{tmp}", False),  # a malformed --docker-host
    ],
)
def test_which_docker_errors_are_waited_for(tmp_path: Path, url: str, waits: bool) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(RuntimeUnavailable) as caught:
        DockerRuntime(RuntimeSettings(options={"docker_host": url.format(tmp=tmp_path)}))
    assert isinstance(caught.value, EngineNotReady) is waits, caught.value
    assert "\n" not in str(caught.value)
