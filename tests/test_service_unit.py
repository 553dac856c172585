"""The systemd unit shipped in packaging/ works as docs/service.md says: systemd accepts it, and
its ExecStart with its Environment (and the env file the page tells an operator to write) works
for a Tink server on Docker, logs JSON to stderr, stops with 0 on SIGTERM, and a configuration
error exits with the status the unit does not restart on."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tinklet_core.model import State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "packaging" / "tinklet.service"
AGENT = f"service-unit-{os.getpid()}"
IMAGE = "tinklet/busybox:latest"


def unit_entries(section: str) -> list[tuple[str, str]]:
    """``(key, value)`` of each line in ``[section]``, in order (keys may repeat)."""
    entries: list[tuple[str, str]] = []
    current = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif line and not line.startswith("#") and current == section:
            key, _, value = line.partition("=")
            entries.append((key, value))
    return entries


def service(key: str) -> list[str]:
    return [value for name, value in unit_entries("Service") if name == key]


def unit_environment(state_root: Path, env_file: dict[str, str]) -> dict[str, str]:
    """The process environment systemd would give ExecStart: ours without TINKLET_*, the
    unit's Environment= lines, the env file's, and StateDirectory= made under ``state_root``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TINKLET_")}
    for assignment in service("Environment"):
        name, _, value = assignment.partition("=")
        environment[name] = value
    environment.update(env_file)
    (state_dir,) = service("StateDirectory")
    made = state_root / state_dir
    made.mkdir(mode=int(service("StateDirectoryMode")[0], 8), parents=True)
    assert environment["TINKLET_STATE_DIR"] == f"/var/lib/{state_dir}", "not the unit's StateDirectory"
    environment["TINKLET_STATE_DIR"] = str(made)
    return environment


def exec_start() -> list[str]:
    """ExecStart's command line, the installed ``tinklet`` in place of /usr/local/bin/tinklet."""
    (line,) = service("ExecStart")
    command = line.split()
    assert command[0] == "/usr/local/bin/tinklet"
    return [str(Path(sys.executable).parent / "tinklet"), *command[1:]]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (scripts/setup installs systemd)")
    unit = tmp_path / "tinklet.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/tinklet", exec_start()[0]))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "tinklet.service" not in result.stderr + result.stdout, result.stderr + result.stdout


def test_the_units_command_works_for_a_tink_server_and_stops_with_zero(tmp_path: Path) -> None:
    workflow = {
        "name": "svc",
        "tasks": [{"name": "t", "actions": [
            {"name": "hello", "image": IMAGE, "command": ["echo", "hello from the unit"], "timeout": 60},
            {"name": "fails", "image": IMAGE, "command": ["sh", "-c", "exit 3"], "timeout": 60},
        ]}],
    }  # fmt: skip
    with TinkServer([parse_workflow(workflow, agent_id=AGENT)], AGENT) as server:
        env_file = {"TINKLET_TINK": server.address, "TINKLET_IDENTIFIER": AGENT, "TINKLET_MAX_BACKOFF": "0.3"}
        process = subprocess.Popen(
            exec_start(),
            env=unit_environment(tmp_path, env_file),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        done = server.wait_until(lambda: State.FAILED in server.states_of("t/fails"), timeout=90)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert done, stderr
    assert [(r.action_name, r.state) for r in server.reports] == [
        ("hello", State.RUNNING), ("hello", State.SUCCESS), ("fails", State.RUNNING), ("fails", State.FAILED),
    ]  # fmt: skip
    assert process.returncode == 0, stderr
    assert stdout == "", "logs go to stderr, nothing to stdout"
    records = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert any("hello from the unit" in record["message"] for record in records)
    assert all({"time", "level", "message"} <= set(record) for record in records)


def test_a_configuration_error_exits_with_the_status_the_unit_does_not_restart_on(tmp_path: Path) -> None:
    assert service("Restart") == ["on-failure"]
    env_file = {"TINKLET_IDENTIFIER": AGENT}  # TINKLET_TINK forgotten
    result = subprocess.run(
        exec_start(), env=unit_environment(tmp_path, env_file), capture_output=True, text=True, timeout=60
    )
    assert str(result.returncode) in service("RestartPreventExitStatus"), result
    assert result.stderr.strip().splitlines()[-1].startswith("tinklet: error: missing --tink")
