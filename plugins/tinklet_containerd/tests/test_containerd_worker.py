"""``tinklet --runtime containerd --containerd-socket PRIVATE.sock`` as a real worker process
against the test Tink server, pulling a private image with the login of ``--registry-file``.
(The behaviour suite's worker tests cover the four-action workflow, TIMEOUT and SIGTERM.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from containerd_support import TEST_IMAGE, PrivateContainerd, options
from test_containerd_pull import DOCKER_IMAGE, hosts_toml

from tinklet_core.model import State
from tinklet_core.testing.registry import TestRegistry
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow


def test_worker_pulls_a_private_image_with_the_registry_file_login(
    containerd: PrivateContainerd, registry: TestRegistry, tmp_path: Path
) -> None:
    agent = f"worker-{uuid.uuid4().hex[:8]}"
    name = f"tinklet-test/worker-{uuid.uuid4().hex[:8]}:v1"
    registry.push(DOCKER_IMAGE, name)
    certs = Path(options(containerd)["containerd_certs_dir"])  # type: ignore[arg-type]
    hosts_toml(certs, registry.host, f'ca = "{registry.ca_file}"\n')
    login = tmp_path / "login.yaml"
    login.write_text(f"name: {registry.host}\nuser: {registry.username}\npassword: {registry.password}\n")
    image = f"{registry.host}/{name}"
    workflow = parse_workflow(
        {"name": "pull", "tasks": [{"name": "t", "actions": [
            {"name": "private", "image": image, "command": ["echo", "pulled and ran"]}]}]},
        agent_id=agent,
    )  # fmt: skip
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in options(containerd).items()]
    with TinkServer([workflow], agent) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "tinklet_core", "--runtime", "containerd", "--tink", server.address,
             "--identifier", agent, "--max-backoff", "0.5", "--registry-file", str(login), *flags],
            env={**os.environ, "TINKLET_DISABLE_PLUGIN_AUTOLOAD": ""},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            done = server.wait_until(lambda: any(s.is_final for s in server.states_of("t/private")), 60)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=15)
        assert done, output
        assert server.states_of("t/private") == [State.RUNNING, State.SUCCESS], output
    assert "pulled and ran" in output
    assert registry.password not in output
    assert image in containerd.ctr("images", "ls", "-q").stdout.split()
    assert containerd.ctr("containers", "ls", "-q").stdout.split() == []


def test_worker_started_while_containerd_is_down_waits_then_runs(
    containerd: PrivateContainerd, tmp_path: Path
) -> None:
    """On CaptainOS the worker and containerd start side by side under systemd: a worker whose
    containerd does not answer yet waits (logging it once), asks the server for nothing, and
    runs the workflow once containerd is up."""
    agent = f"wait-{uuid.uuid4().hex[:8]}"
    workflow = parse_workflow(
        {"name": "wait", "tasks": [{"name": "t", "actions": [
            {"name": "hello", "image": TEST_IMAGE, "command": ["echo", "containerd was waited for"]}]}]},
        agent_id=agent,
    )  # fmt: skip
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in options(containerd).items()]
    log_path = tmp_path / "worker.log"
    containerd.stop()
    try:
        with TinkServer([workflow], agent) as server, open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tinklet_core", "--runtime", "containerd", "--tink", server.address,
                 "--identifier", agent, "--max-backoff", "1", *flags],
                env={**os.environ, "TINKLET_DISABLE_PLUGIN_AUTOLOAD": ""},
                stdout=log, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 30
                while "waiting for it" not in log_path.read_text() and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert "waiting for it" in log_path.read_text(), log_path.read_text()
                time.sleep(2)  # several retries while containerd is down
                assert process.poll() is None, log_path.read_text()
                assert server.calls == [], "the worker asked for work before containerd answered"
                containerd.start()
                done = server.wait_until(lambda: any(s.is_final for s in server.states_of("t/hello")), 60)
            finally:
                process.send_signal(signal.SIGTERM)
                code = process.wait(15)
            assert done, log_path.read_text()
            assert server.states_of("t/hello") == [State.RUNNING, State.SUCCESS], log_path.read_text()
    finally:
        if containerd.process is None:
            containerd.start()
    output = log_path.read_text()
    assert code == 0, output
    assert output.count("waiting for it") == 1, output
    assert output.count("the container engine answers now") == 1, output
    assert "containerd was waited for" in output
    assert "Traceback" not in output
