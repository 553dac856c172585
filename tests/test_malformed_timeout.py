"""A negative timeout is a malformed action: FAILED with a clear reason, and the worker goes on.

One check (``tinklet_core.action_checks``) serves every transport: v2's ActionResponse, v1's
WorkflowAction and the workflow file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tinklet_core.errors import MalformedAction
from tinklet_core.model import State
from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.transports.grpc_v2 import action_from_response
from tinklet_core.workflow import parse_workflow

PROCESS = ("-p", "tinklet_core.testing.process_runtime", "--runtime", "process")
REASON = "'timeout' is negative (-5); use 0 for no limit"


def one_action(name: str, timeout: int) -> dict[str, object]:
    action = {"name": "a", "image": "none", "command": ["echo", name], "timeout": timeout}
    return {"name": name, "tasks": [{"name": "t", "actions": [action]}]}


def test_a_v2_action_with_a_negative_timeout_is_malformed() -> None:
    response = pb.ActionResponse(workflow_id="w", task_id="t", action_id="a", name="a", image="i", timeout=-5)
    with pytest.raises(MalformedAction, match=REASON.replace("(", r"\(").replace(")", r"\)")) as raised:
        action_from_response(response, "agent")
    assert raised.value.action.action_id == "a"  # kept so that it can be reported FAILED


@pytest.mark.parametrize("protocol", ["v2", "v1"])
def test_the_worker_reports_it_failed_and_runs_the_next_workflow(protocol: str) -> None:
    agent = f"negative-timeout-{protocol}"
    workflows = [parse_workflow(one_action(name, t), agent_id=agent) for name, t in (("neg", -5), ("ok", 0))]
    with TinkServer(workflows, agent, protocol=protocol) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "tinklet_core", *PROCESS, "--tink", server.address,
             "--identifier", agent, "--protocol", protocol, "--max-backoff", "0.3"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        done = server.wait_until(lambda: server.workflow_state("ok") is State.SUCCESS, timeout=60)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert done, output
    assert server.workflow_state("neg") is State.FAILED
    failed = [r for r in server.reports if r.workflow_id == "neg" and r.state is State.FAILED]
    assert len(failed) == 1 and REASON in failed[0].message, server.reports
    assert process.returncode == 0


def test_tinklet_run_fails_the_action_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "negative.yaml"
    path.write_text(
        "name: neg\ntasks:\n  - name: t\n    actions:\n"
        "      - {name: a, image: none, command: [echo, hi], timeout: -5}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "tinklet_core", *PROCESS, "run", str(path)],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert REASON in result.stdout + result.stderr
    assert "hi" not in result.stdout.split()  # never run
