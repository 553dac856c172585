"""The tinklet command as a user runs it: one-line errors, listings, local workflow runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

PROCESS = ["-p", "tinklet_core.testing.process_runtime"]


def tinklet(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinklet_core", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def top_level_imports(importtime_log: str) -> set[str]:
    """Top-level packages named in ``python -X importtime`` output."""
    return {line.split("|")[-1].strip().split(".")[0] for line in importtime_log.splitlines() if "|" in line}


def assert_one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("tinklet: error: "), result.stderr
    assert text in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_runtime_names_the_installed_ones() -> None:
    result = tinklet("--runtime", "lxc", "--tink", "127.0.0.1:1", "--identifier", "x")
    installed = "containerd, docker, kube, podman"
    assert_one_line_error(result, f"unknown runtime 'lxc'; installed runtimes: {installed}")


def test_missing_tink_and_identifier() -> None:
    assert_one_line_error(tinklet("--identifier", "x"), "missing --tink HOST:PORT")
    assert_one_line_error(tinklet("--tink", "127.0.0.1:1"), "missing --identifier ID")


def test_unreadable_config(tmp_path: Path) -> None:
    assert_one_line_error(tinklet("--config", str(tmp_path / "nope.yaml")), "cannot read config file")


def test_bad_flag_value() -> None:
    assert_one_line_error(tinklet("--max-backoff", "soon"), "")


def test_docker_socket_that_is_no_socket(tmp_path: Path) -> None:
    """A missing socket is waited for (tests/test_engine_wait.py); a file that is not one is not."""
    (tmp_path / "no.sock").write_text("")
    result = tinklet(
        "--runtime",
        "docker",
        "--docker-host",
        f"unix://{tmp_path}/no.sock",
        "--tink",
        "127.0.0.1:1",
        "--identifier",
        "x",
    )
    assert_one_line_error(result, "not reachable")


def test_plugins_list_json_shows_runtime_plugins() -> None:
    result = tinklet("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    plugins = {entry["name"]: entry for entry in report["plugins"]}
    assert plugins["docker"]["distribution"] == "tinklet-docker"
    assert plugins["docker"]["version"] == "0.1.0"
    assert "tinklet_execute_action" in plugins["docker"]["hooks"]
    assert plugins["docker"]["options"] == ["--docker-host"]
    assert plugins["core-registry"]["hooks"] == ["tinklet_registry_credentials"]
    runtimes = {entry["name"]: entry for entry in report["runtimes"]}
    assert runtimes["kube"]["aliases"] == ["kubernetes"]
    assert runtimes["kube"]["summary"]
    assert runtimes["kube"]["plugin"] == "kube"
    transports = {entry["name"]: entry["plugin"] for entry in report["transports"]}
    assert transports["v2"] == "core-v2"
    assert transports["file"] == "core-file"
    assert report["failures"] == []


def test_plugins_list_text_shows_aliases_summaries_and_transports() -> None:
    result = tinklet("plugins", "list")
    assert result.returncode == 0, result.stderr
    assert "kube (alias kubernetes): " in result.stdout
    assert "v2: Tink v2" in result.stdout
    assert "transport v2" in result.stdout


def test_plugins_can_be_blocked_and_autoload_switched_off() -> None:
    blocked = tinklet("-p", "no:docker", "plugins", "list", "--json")
    assert "docker" not in {entry["name"] for entry in json.loads(blocked.stdout)["plugins"]}
    off = tinklet("plugins", "list", "--json", env={"TINKLET_DISABLE_PLUGIN_AUTOLOAD": "1"})
    names = {entry["name"] for entry in json.loads(off.stdout)["plugins"]}
    core_transports = {"core-auto", "core-v2", "core-v1", "core-v1-legacy", "core-file"}
    assert names == {"core-registry", "core-tls", *core_transports}


def test_listing_plugins_does_not_import_heavy_clients() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tinklet_core", "plugins", "list"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line
    }
    assert "kubernetes" not in imported
    assert "docker" not in imported
    assert "podman" not in imported


def write_workflow(path: Path, *actions: dict) -> Path:
    path.write_text(yaml.safe_dump({"name": "local", "tasks": [{"name": "t", "actions": list(actions)}]}))
    return path


def test_run_prints_each_state_and_a_summary(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path / "wf.yaml",
        {"name": "hello", "image": "none", "command": ["echo", "hi"]},
        {"name": "boom", "image": "none", "command": ["sh", "-c", "echo bad >&2; exit 4"]},
        {"name": "skipped", "image": "none", "command": ["true"]},
    )
    result = tinklet(*PROCESS, "run", str(path), "--runtime", "process")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "RUNNING  t/hello"
    assert lines[1].startswith("SUCCESS  t/hello (")
    assert lines[3].startswith("FAILED   t/boom (") and lines[3].endswith("exit code 4; last output: bad")
    assert lines[4] == "workflow local: FAILED (1 of 3 succeeded, 1 not run)"
    assert "t/hello | hi" in result.stderr


def test_run_exits_zero_when_the_workflow_succeeds(tmp_path: Path) -> None:
    path = write_workflow(tmp_path / "ok.yaml", {"name": "a", "image": "none", "command": ["true"]})
    result = tinklet(*PROCESS, "--runtime", "process", "run", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "workflow local: SUCCESS (1 of 1 actions succeeded)"


def test_run_with_a_malformed_workflow(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("tasks: [{name: t, actions: [{name: a}]}]\n")
    assert_one_line_error(tinklet("run", str(path)), "'image' is required")


def test_version() -> None:
    result = tinklet("version")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "tinklet 0.1.0"


def test_a_docker_run_never_imports_the_kubernetes_client(tmp_path: Path) -> None:
    action = {"name": "a", "image": "tinklet/busybox:latest", "command": ["true"]}
    path = write_workflow(tmp_path / "wf.yaml", action)
    result = subprocess.run(
        # agent of its own, not `local` (another test's run on the shared dockerd): tests/test_local_runs.py
        [sys.executable, "-X", "importtime", "-m", "tinklet_core",
         "--identifier", f"cli-{uuid.uuid4().hex[:8]}", "run", str(path), "--runtime", "docker"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    imported = top_level_imports(result.stderr)
    assert "docker" in imported, "the docker runtime must have been opened"
    assert "kubernetes" not in imported
    assert "podman" not in imported
