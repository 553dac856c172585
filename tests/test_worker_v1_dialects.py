"""A real ``tinklet`` worker process over v1 and v1-legacy, chosen explicitly and by ``auto``,
on Docker and on Podman, against the in-process test Tink server speaking only that dialect.

Each case is one worker process working through four workflows in turn, so the matrix costs one
process start per case rather than four:

1. the runtime suite's four-action workflow: R/S, R/S, R/FAILED, and the fourth never runs;
2. a ``sleep 30`` with a 2 s timeout: R, then TIMEOUT within a couple of seconds;
3. an ``echo`` whose final report the server refuses three times: delivered once, run once;
4. a ``sleep 60``: SIGTERM mid-action exits 0, reports no final state, leaves no container.

Over v1-legacy the identifier is a MAC that the server's HardwareService maps to the hardware id
its workflows are assigned to.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinklet_core.model import State
from tinklet_core.testing.runtime_suite import RuntimeBehaviourSuite
from tinklet_core.testing.tink_server import Report, TinkServer
from tinklet_core.workflow import Workflow, parse_workflow

IMAGE = "tinklet/busybox:latest"
PODMAN_CONF = "/etc/containers/tinklet-test.conf"
CASES = [
    (runtime, dialect, selection)
    for runtime in ("docker", "podman")
    for dialect in ("v1", "v1-legacy")
    for selection in ("explicit", "auto")
]


@pytest.fixture(scope="module")
def podman_socket() -> Iterator[str]:
    """One private Podman service for this module's podman cases (quicker than one per worker)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/setup installs it)")
    folder = Path(tempfile.mkdtemp(prefix="tinklet-v1-podman-"))
    socket = folder / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env={**os.environ, "CONTAINERS_CONF": PODMAN_CONF},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not socket.exists() and service.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert socket.exists(), "podman system service did not start"
        yield f"unix://{socket}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        shutil.rmtree(folder, ignore_errors=True)


def leftovers(runtime: str, identifier: str) -> list[str]:
    """Names of containers labelled for ``identifier`` that still exist on ``runtime``."""
    env = {**os.environ, "CONTAINERS_CONF": PODMAN_CONF} if runtime == "podman" else None
    result = subprocess.run(
        [runtime, "ps", "-a", "--filter", f"label=tinklet.agent={identifier}", "--format", "{{.Names}}"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.split()


def workflows(tmp_path: Path, worker_id: str) -> list[Workflow]:
    one_action = {
        "slow": {"name": "sleepy", "image": IMAGE, "command": ["sleep", "30"], "timeout": 2},
        "retry": {"name": "once", "image": IMAGE, "command": ["echo", "ran"]},
        "long": {"name": "long", "image": IMAGE, "command": ["sleep", "60"]},
    }
    four = RuntimeBehaviourSuite().four_action_workflow(tmp_path)
    return [parse_workflow(four, agent_id=worker_id)] + [
        parse_workflow({"name": name, "tasks": [{"name": "t", "actions": [action]}]}, agent_id=worker_id)
        for name, action in one_action.items()
    ]


def worker(
    runtime: str, address: str, identifier: str, protocol: str, podman: str | None
) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "tinklet_core", "--runtime", runtime, "--tink", address,
        "--identifier", identifier, "--protocol", protocol, "--max-backoff", "0.5",
    ]  # fmt: skip
    env = {**os.environ, "TINKLET_DISABLE_PLUGIN_AUTOLOAD": ""}
    if podman is not None:
        command += ["--podman-socket", podman]
        env["CONTAINERS_CONF"] = PODMAN_CONF
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize(("runtime", "dialect", "selection"), CASES, ids=["-".join(case) for case in CASES])
def test_worker_over_a_v1_dialect(
    runtime: str, dialect: str, selection: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if runtime == "docker" and not Path("/var/run/docker.sock").exists():
        pytest.skip("dockerd is not running (scripts/setup starts it)")
    podman = request.getfixturevalue("podman_socket") if runtime == "podman" else None
    unique = uuid.uuid4().hex[:10]
    if dialect == "v1-legacy":
        identifier = "02:" + ":".join(unique[i : i + 2] for i in range(0, 10, 2))
        worker_id = f"hw-{unique}"
    else:
        identifier = worker_id = f"v1-worker-{unique}"

    server: TinkServer

    def arm_refusals(report: Report) -> None:
        if report.state is State.TIMEOUT:  # the third workflow's final report is refused 3 times
            server.refuse_reports(3)

    server = TinkServer(
        workflows(tmp_path, worker_id), worker_id, protocol=dialect,
        hardware={identifier: worker_id}, on_report=arm_refusals,
    )  # fmt: skip
    with server:
        protocol = dialect if selection == "explicit" else "auto"
        process = worker(runtime, server.address, identifier, protocol, podman)
        try:
            started = server.wait_until(lambda: State.RUNNING in server.states_of("t/long"), timeout=120)
            time.sleep(1.0)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=15)
            stopped_in = time.monotonic() - signalled
        finally:
            output = RuntimeBehaviourSuite.stop_worker(process)
        reports = server.reports
    assert started, f"the worker never reached the last workflow; it said:\n{output}"
    assert [(r.workflow_id, r.action_name, r.state) for r in reports] == [
        ("suite", "echo", State.RUNNING), ("suite", "echo", State.SUCCESS),
        ("suite", "env-and-mount", State.RUNNING), ("suite", "env-and-mount", State.SUCCESS),
        ("suite", "fail", State.RUNNING), ("suite", "fail", State.FAILED),
        ("slow", "sleepy", State.RUNNING), ("slow", "sleepy", State.TIMEOUT),
        ("retry", "once", State.RUNNING), ("retry", "once", State.SUCCESS),
        ("long", "long", State.RUNNING),
    ], output  # fmt: skip
    by_action: dict[str, list[Report]] = {}
    for report in reports:
        by_action.setdefault(report.action_name, []).append(report)
    _check_four_action_workflow(by_action, output)
    # killed at its 2 s deadline, not at the end of its 30 s sleep (how promptly a runtime kills
    # is the runtime suite's business; the bound here leaves room for a loaded machine)
    running, timed_out = by_action["sleepy"]
    elapsed = (timed_out.received_at - running.received_at).total_seconds()
    assert elapsed < 10, f"TIMEOUT came {elapsed:.1f}s after RUNNING"
    assert timed_out.seconds is not None and 2 <= timed_out.seconds < 10
    assert output.count("| ran") == 1, "the action whose final report was refused ran again"
    assert "retrying until delivered" in output
    assert code == 0, output
    assert stopped_in < 10
    assert {r.agent_id for r in reports} == {worker_id}
    if selection == "auto":
        assert output.count(f"speaks protocol {dialect}") == 1, output
    assert leftovers(runtime, identifier) == []


def _check_four_action_workflow(by_action: dict[str, Any], output: str) -> None:
    failed = by_action["fail"][-1]
    assert "exit code 3" in failed.message and "bad" in failed.message
    assert "hello from tinklet = ok" in output
    assert "mounted file" in output
    assert "must not run" not in output
