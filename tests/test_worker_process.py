"""The tinklet worker process against the test Tink server: plain and mTLS, through the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tinklet_core.model import State
from tinklet_core.testing.certs import make_test_pki
from tinklet_core.testing.tink_server import ServerTls, TinkServer
from tinklet_core.workflow import parse_workflow

AGENT = "process-worker"
WORKFLOW = {
    "name": "wf",
    "tasks": [{"name": "t", "actions": [
        {"name": "a", "image": "none", "command": ["echo", "first"]},
        {"name": "b", "image": "none", "command": ["echo", "second"]},
    ]}],
}  # fmt: skip


def run_worker(address: str, *extra: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "tinklet_core", "-p", "tinklet_core.testing.process_runtime",
        "--runtime", "process", "--tink", address, "--identifier", AGENT, "--max-backoff", "0.3", *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=15)
    return process.returncode, output


def test_worker_over_mutual_tls(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    tls = ServerTls.from_files(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT, tls=tls) as server:
        process = run_worker(
            server.address,
            "--tls", "--tls-ca", str(pki.ca_cert),
            "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key),
        )  # fmt: skip
        done = server.wait_until(lambda: State.SUCCESS in server.states_of("t/b"), timeout=30)
        code, output = finish(process)
    assert done, output
    assert [(r.action_name, r.state) for r in server.reports] == [
        ("a", State.RUNNING), ("a", State.SUCCESS), ("b", State.RUNNING), ("b", State.SUCCESS),
    ]  # fmt: skip
    assert code == 0
    assert "(TLS)" in output


def test_worker_waits_for_a_server_that_comes_up_late(tmp_path: Path) -> None:
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT) as probe:
        address = probe.address
    process = run_worker(address)
    time.sleep(2.0)  # the worker retries a dead server quietly, and does not exit
    still_running = process.poll() is None
    port = address.rsplit(":", 1)[1]
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT, port=int(port)) as server:
        done = server.wait_until(lambda: State.SUCCESS in server.states_of("t/b"), timeout=30)
        code, output = finish(process)
    assert still_running, output
    assert done, output
    assert code == 0
    assert output.count("cannot get an action") == 1, "a dead server is logged once, not once per retry"


def test_wrong_ca_is_logged_and_the_worker_keeps_trying(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "server")
    other = make_test_pki(tmp_path / "other")
    tls = ServerTls.from_files(pki.server_cert, pki.server_key)
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT, tls=tls) as server:
        process = run_worker(server.address, "--tls", "--tls-ca", str(other.ca_cert))
        time.sleep(2.0)
        code, output = finish(process)
    assert server.reports == []
    assert code == 0
    assert "cannot get an action" in output
    assert "Traceback" not in output
