"""A command line written for the Go tinklet keeps working: ``tinklet RUNTIME`` subcommands,
single-dash long flags, ``-id``/``--id`` and ``TINKLET_ID``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.plugin_kit import PROCESS, assert_one_line_error, tinklet
from tinklet_core.cli import long_single_dash, plugin_switches
from tinklet_core.model import State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

AGENT = "go-style-worker"
WORKFLOW = {"name": "go", "tasks": [{"name": "t", "actions": [
    {"name": "a", "image": "none", "command": ["echo", "from a go-style command line"]}]}]}  # fmt: skip


def serve_once(args: list[str], env: dict[str, str] | None = None) -> tuple[bool, int, str]:
    """Run tinklet with ``args`` against a test server until the action succeeded, then SIGTERM."""
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT) as server:
        command = [
            sys.executable,
            "-m",
            "tinklet_core",
            *(a.replace("ADDRESS", server.address) for a in args),
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        done = server.wait_until(lambda: State.SUCCESS in server.states_of("t/a"), timeout=30)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
        return done, process.returncode, output


def test_go_flags_and_a_runtime_subcommand() -> None:
    registry = '{"name": "r.example", "user": "u", "password": "p"}'
    done, code, output = serve_once(
        ["-p", PROCESS, "-tink", "ADDRESS", "-identifier", AGENT, "-registry", registry, "-loglevel", "info",
         "-max-backoff=0.3", "process"]
    )  # fmt: skip
    assert done, output
    assert code == 0, output
    assert "from a go-style command line" in output
    assert "runtime process" in output


def test_id_flag_and_tinklet_id_environment_variable() -> None:
    done, code, output = serve_once(["-p", PROCESS, "--runtime", "process", "-tink", "ADDRESS", "-id", AGENT])
    assert done and code == 0, output
    done, code, output = serve_once(
        ["-p", PROCESS, "--runtime", "process", "--tink", "ADDRESS"], env={"TINKLET_ID": AGENT}
    )
    assert done and code == 0, output


def test_single_dash_flags_leave_values_and_unknown_words_alone() -> None:
    names = {"tink": True, "identifier": True, "id": True, "tls": False, "no-tls": False}
    assert long_single_dash(["-tink", "-id", "-id", "-x", "-tls", "run", "--", "-tink"], names) == [
        "--tink", "-id", "--id", "-x", "--tls", "run", "--", "-tink",
    ]  # fmt: skip
    assert long_single_dash(["-tink=h:1", "-p", "no:docker"], names) == ["--tink=h:1", "-p", "no:docker"]
    assert long_single_dash(["-tls=true", "-tls=false", "--tls=0"], names) == [
        "--tls",
        "--no-tls",
        "--no-tls",
    ]


def test_plugin_switches_are_taken_out_wherever_they_are() -> None:
    rest, blocked, extra = plugin_switches(["run", "wf.yaml", "-p", "no:docker", "--plugin=mod", "-pno:kube"])
    assert (rest, blocked, extra) == (["run", "wf.yaml"], ["docker", "kube"], ["mod"])


def test_an_unknown_single_dash_flag_is_still_one_line() -> None:
    result = tinklet("-tinkk", "h:1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert_one_line_error(tinklet("-tink", "127.0.0.1:1"), "missing --identifier ID")
