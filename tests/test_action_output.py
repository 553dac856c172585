"""How action output reaches the worker log, seen from the command line: every line, in order,
tagged; or, with ``--action-output tail``, none of it but the failure's tail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

PROCESS = ["-p", "tinklet_core.testing.process_runtime"]
LINES = 5000


def run(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``tinklet run`` of a chatty action that then fails, on the process runtime."""
    workflow = {
        "name": "out",
        "tasks": [{"name": "t", "actions": [{"name": "chatty", "image": "none", "command": [
            "sh", "-c", f"seq 1 {LINES}; echo on-stderr >&2; exit 3",
        ]}]}],
    }  # fmt: skip
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(workflow))
    return subprocess.run(
        [sys.executable, "-m", "tinklet_core", *PROCESS, "run", str(path), "--runtime", "process", *options],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_every_line_is_logged_tagged_and_in_order(tmp_path: Path) -> None:
    result = run(tmp_path)
    logged = [line.split(" | ", 1)[1] for line in result.stderr.splitlines() if "out/t/chatty | " in line]
    assert [line for line in logged if line != "on-stderr"] == [str(n) for n in range(1, LINES + 1)]
    assert "on-stderr" in logged


def test_tail_keeps_output_out_of_the_log_but_in_the_failure_message(tmp_path: Path) -> None:
    result = run(tmp_path, "--action-output", "tail")
    assert result.returncode == 1
    assert "out/t/chatty | " not in result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed, result.stdout
    message = failed[0].split("exit code 3; last output: ", 1)[1].split(" | ")
    assert sorted(message) == sorted(["4997", "4998", "4999", "5000", "on-stderr"])
