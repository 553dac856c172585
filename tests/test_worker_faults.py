"""A real worker process against a test Tink server that misbehaves: it hangs a final report, goes
away and comes back on the same port, refuses RUNNING for good, or sends ids made to break logs.

Times are read from the server's own record of calls (``TinkServer.calls``): these are behaviour
bounds a supervisor relies on, not speed benchmarks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest

from tinklet_core.model import State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

IMAGE = "tinklet/busybox:latest"
PROCESS = ("-p", "tinklet_core.testing.process_runtime", "--runtime", "process")


def worker(address: str, identifier: str, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tinklet_core", "--tink", address, "--identifier", identifier, *extra]
    env = {**os.environ, "TINKLET_DISABLE_PLUGIN_AUTOLOAD": ""}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def terminate(process: subprocess.Popen[str]) -> tuple[float, int, str]:
    """SIGTERM ``process``; how long it took to exit, its exit code and its output."""
    begun = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return time.monotonic() - begun, process.returncode, output


def one_action(name: str, agent: str, command: list[str], image: str = IMAGE) -> object:
    action = {"name": "a", "image": image, "command": command}
    return parse_workflow({"name": name, "tasks": [{"name": "t", "actions": [action]}]}, agent_id=agent)


def reports_called(server: TinkServer) -> int:
    return sum(call.method == "ReportActionStatus" for call in server.calls)


def docker_leftovers(agent: str) -> list[str]:
    result = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=tinklet.agent={agent}", "--format", "{{.Names}}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.split()


@pytest.mark.parametrize(("dialect", "protocol"), [("v2", "v2"), ("v1", "auto")])
def test_sigterm_while_the_final_report_hangs_exits_0_within_10s(dialect: str, protocol: str) -> None:
    if not Path("/var/run/docker.sock").exists():
        pytest.skip("dockerd is not running (scripts/setup starts it)")
    agent = f"hung-report-{uuid.uuid4().hex[:8]}"
    with TinkServer([one_action("wf", agent, ["echo", "done"])], agent, protocol=dialect) as server:
        server.hang_reports(1)
        process = worker(server.address, agent, "--runtime", "docker", "--protocol", protocol,
                         "--max-backoff", "0.5", "--action-privilege", "none")  # fmt: skip
        hanging = server.wait_until(lambda: reports_called(server) >= 2, timeout=120)  # RUNNING, then final
        took, code, output = terminate(process)
        assert hanging, output
        assert code == 0, output
        assert took <= 10, f"exit took {took:.1f}s\n{output}"
        assert "abandoned because tinklet is stopping" in output
        # the final state was never recorded: the server serves the action again, and it is re-run
        assert server.states_of("t/a") == [State.RUNNING]
        assert docker_leftovers(agent) == []
        if dialect == "v2":
            again = worker(server.address, agent, "--runtime", "docker", "--max-backoff", "0.5",
                           "--action-privilege", "none")  # fmt: skip
            rerun = server.wait_until(lambda: State.SUCCESS in server.states_of("t/a"), timeout=120)
            _took, code, output = terminate(again)
            assert rerun and code == 0, output
            assert server.states_of("t/a") == [State.RUNNING, State.RUNNING, State.SUCCESS]


@pytest.mark.parametrize(("protocol", "outages"), [("v2", (8.0, 5.5)), ("v1", (8.0,))])
def test_the_first_call_after_the_server_returns_comes_within_max_backoff_plus_1s(
    protocol: str, outages: tuple[float, ...]
) -> None:
    max_backoff = 1.0
    # Outages long enough for gRPC's own reconnect backoff (1 s, growing by 1.6x) to reach 2.6 s
    # and 4 s: a restart then often lands seconds before the channel would dial again.
    # the server's workflow is another agent's: this worker polls and is told "nothing now"
    workflow = one_action("wf", "someone-else", ["true"], image="none")
    firsts: list[float] = []
    with TinkServer([workflow], "someone-else", protocol=protocol) as server:
        process = worker(server.address, "poller", *PROCESS, "--protocol", protocol,
                         "--max-backoff", str(max_backoff))  # fmt: skip
        try:
            assert server.wait_until(lambda: len(server.calls) > 0, timeout=60)
            for outage in outages:
                server.stop()
                time.sleep(outage)
                server.start()
                back = time.monotonic()
                server.wait_until(lambda: any(c.at > back for c in server.calls), timeout=15)  # noqa: B023
                firsts.append(min((c.at - back for c in server.calls if c.at > back), default=99.0))
        finally:
            _took, code, output = terminate(process)
    late = [first for first in firsts if first > max_backoff + 1]
    assert not late, f"first calls {firsts} s after the restarts\n{output}"
    assert code == 0, output


def test_a_running_report_refused_for_good_is_asked_again_with_backoff() -> None:
    agent = f"refused-running-{uuid.uuid4().hex[:8]}"
    with TinkServer([one_action("wf", agent, ["true"], image="none")], agent) as server:
        server.refuse_reports(1_000_000, grpc.StatusCode.NOT_FOUND, final_only=False)
        process = worker(server.address, agent, *PROCESS, "--max-backoff", "0.3")
        try:
            started = server.wait_until(lambda: reports_called(server) > 0, timeout=60)
            time.sleep(2.0)
            window = [c for c in server.calls if c.method == "GetAction"]
        finally:
            _took, code, output = terminate(process)
    assert started, output
    first_report = next(c.at for c in server.calls if c.method == "ReportActionStatus")
    asked = [c for c in window if first_report < c.at <= first_report + 2.0]
    # backoff of 0.2-0.3 s between attempts: about 8 in 2 s; without it, hundreds
    assert 2 <= len(asked) <= 15, f"{len(asked)} GetAction calls in 2 s"
    assert server.states_of("t/a") == []
    assert code == 0, output


def test_server_ids_reach_the_log_escaped_and_bounded_and_the_server_gets_them_back_whole() -> None:
    nasty = "evil\x00name\nFAKE ERROR tinklet: forged\tx\x1b[31mred"
    long_id = "w" * 5000
    agent = f"log-injection-{uuid.uuid4().hex[:8]}"
    action = {"name": nasty, "image": "none\x1b[2J", "command": ["echo", "hello"]}
    tasks = [{"name": nasty, "actions": [action]}]
    workflow = parse_workflow({"name": long_id, "tasks": tasks}, agent_id=agent)
    action_id = f"{nasty}/{nasty}"
    with TinkServer([workflow], agent) as server:
        process = worker(server.address, agent, *PROCESS, "--max-backoff", "0.3")
        done = server.wait_until(lambda: State.SUCCESS in server.states_of(action_id), timeout=60)
        _took, code, output = terminate(process)
    assert done, output
    assert code == 0, output
    for bad in ("\x00", "\x1b", "\t", "\r"):
        assert bad not in output
    lines = output.splitlines()
    assert not any(line.startswith("FAKE ERROR") for line in lines), output
    assert long_id not in output  # never whole, not even once
    assert max(len(line) for line in lines) < 600
    assert "evil\\x00name\\nFAKE ERROR tinklet: forged\\tx\\x1b[31mred" in output
    assert "none\\x1b[2J" in output  # the image too
    # reports carry the real ids
    assert {(r.workflow_id, r.task_id, r.action_id) for r in server.reports} == {(long_id, nasty, action_id)}
