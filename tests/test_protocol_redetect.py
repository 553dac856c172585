"""``--protocol auto`` detects again when the generation it had chosen is answered UNIMPLEMENTED:
a Tink server replaced by another generation behind the same address (v2 → v1 during an outage,
or an upgrade v1 → v2) gets its next workflow run over the protocol it speaks now, and the change
is logged once. "No work now" never makes it detect again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from tinklet_core.errors import TransportError
from tinklet_core.model import Action, Event, State
from tinklet_core.testing.runtime_suite import RuntimeBehaviourSuite
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.transports.auto import AutoTransport
from tinklet_core.workflow import Workflow, parse_workflow

AGENT = "redetect-worker"
PROCESS = ("-p", "tinklet_core.testing.process_runtime", "--runtime", "process")


def one_action(name: str, command: list[str]) -> Workflow:
    action = {"name": "a", "image": "img:1", "command": command}
    return parse_workflow({"name": name, "tasks": [{"name": "t", "actions": [action]}]}, agent_id=AGENT)


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def run_next(transport: AutoTransport, timeout: float) -> Action:
    """Ask like the worker does (errors while the server is away are retried) until an action
    comes; report it RUNNING, then SUCCESS."""
    action = _read_until_action(transport, timeout)
    started = dt.datetime.now(dt.UTC)
    transport.write(Event(action, State.RUNNING, started_at=started))
    transport.write(Event(action, State.SUCCESS, started, dt.datetime.now(dt.UTC)))
    return action


def _read_until_action(transport: AutoTransport, timeout: float) -> Action:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            action = transport.read()
        except TransportError:
            action = None
        if action is not None:
            return action
        time.sleep(0.2)
    raise AssertionError("no action within the timeout")


def changes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "speaks protocol" in r.getMessage()]


@pytest.mark.parametrize(("first", "then"), [("v2", "v1"), ("v1", "v2")])
def test_auto_follows_a_server_replaced_by_another_generation(
    first: str, then: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tinklet.transport")
    with TinkServer([one_action("wf-old", ["true"])], AGENT, protocol=first) as old:
        address = old.address
        transport = AutoTransport.for_server(address, AGENT, cancelled=threading.Event())
        assert run_next(transport, 15).workflow_id == "wf-old"
        for _ in range(3):  # "no work now" keeps the choice
            assert transport.read() is None
        assert transport.chosen == first
    try:
        with pytest.raises(TransportError):  # the server is away: the choice stays
            transport.read()
        assert transport.chosen == first
        with TinkServer([one_action("wf-new", ["true"])], AGENT, protocol=then, port=port_of(address)) as new:
            action = run_next(transport, 20)
            assert action.workflow_id == "wf-new"
            assert transport.chosen == then
            assert new.states_of("t/a") == [State.RUNNING, State.SUCCESS]
            for _ in range(3):
                assert transport.read() is None
    finally:
        transport.close()
    assert changes(caplog) == [
        f"tink server {address} speaks protocol {first}",
        f"tink server {address} speaks protocol {then} now (was {first})",
    ]


def test_no_work_now_never_makes_auto_detect_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tinklet.transport")
    with TinkServer([one_action("wf", ["true"])], "someone-else") as server:  # NOT_FOUND for this agent
        transport = AutoTransport.for_server(server.address, AGENT, cancelled=threading.Event())
        try:
            assert [transport.read() for _ in range(5)] == [None] * 5
        finally:
            transport.close()
        assert transport.chosen == "v2"
        assert [c.method for c in server.calls].count("GetAction") == 5  # never asked over v1
    assert changes(caplog) == [f"tink server {server.address} speaks protocol v2"]


def terminate(process: subprocess.Popen[str]) -> tuple[int, str]:
    output = RuntimeBehaviourSuite.stop_worker(process)
    return process.returncode, output


def test_a_worker_runs_the_next_workflow_over_v1_after_its_v2_server_is_replaced() -> None:
    with TinkServer([one_action("wf-v2", ["echo", "over-v2"])], AGENT) as v2:
        address = v2.address
        command = [sys.executable, "-m", "tinklet_core", "--tink", address, "--identifier", AGENT,
                   *PROCESS, "--protocol", "auto", "--max-backoff", "0.5"]  # fmt: skip
        env = {**os.environ, "TINKLET_DISABLE_PLUGIN_AUTOLOAD": ""}
        worker = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            assert v2.wait_until(lambda: v2.workflow_state("wf-v2") is State.SUCCESS, timeout=60)
            done = len(v2.calls)  # then "no work now" a few times: still v2
            assert v2.wait_until(lambda: len(v2.calls) >= done + 3, timeout=20)
        except BaseException:
            print(terminate(worker)[1])
            raise
    try:
        time.sleep(1.5)  # the outage: the worker finds nobody and keeps asking
        with TinkServer(
            [one_action("wf-v1", ["echo", "over-v1"])], AGENT, protocol="v1", port=port_of(address)
        ) as v1:
            ran = v1.wait_until(lambda: v1.workflow_state("wf-v1") is State.SUCCESS, timeout=60)
            assert v1.wait_until(lambda: len(v1.calls) >= len(v1.reports) + 3, timeout=20)  # idle again
            code, output = terminate(worker)
    finally:
        terminate(worker)
    assert ran, output
    assert code == 0, output
    assert [r.state for r in v1.reports] == [State.RUNNING, State.SUCCESS], output
    assert output.count("speaks protocol v2") == 1, output
    assert output.count(f"tink server {address} speaks protocol v1 now (was v2)") == 1, output
    assert "UNIMPLEMENTED to every protocol" not in output, output
