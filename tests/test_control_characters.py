"""Raw control characters never reach a person or a log pipeline.

An action on the real Docker runtime writes ESC sequences, NUL, CR, BEL, DEL, a C1 CSI, U+2028
and U+202E; a workflow has a 100,000-character id and a task name that moves the cursor. The
text log, the JSON log and ``tinklet run``'s progress lines show each of them escaped, and the
ids shortened with a marker of their full length.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from test_registry_pull import LOCAL_IMAGE, _docker_ready

pytestmark = pytest.mark.skipif(_docker_ready() is not None, reason=_docker_ready() or "")

RAW = "\x1b\x00\r\x07\x7f\x9b\u2028\u202e"
"""What must never be in tinklet's own stdout/stderr: ESC, NUL, CR, BEL, DEL, C1 CSI, U+2028, U+202E."""
# busybox printf: octal escapes; \302\233 is U+009B (C1 CSI), \342\200\250 U+2028, \342\200\256 U+202E
PRINTF = (
    r"printf 'one\033[2Jtwo\000three\rfour\007five\177six\302\233seven\342\200\250eight\342\200\256nine\n'"
)
SHOWN = r"one\x1b[2Jtwo\x00three\rfour\x07five\x7fsix\x9bseven\u2028eight\u202enine"
LONG_ID = "w" * 100_000 + "\x1b[2J"
HOSTILE_TASK = "t\x1b[1A\x1b[2K\u202eforged"


def _run(
    tmp_path: Path, *options: str, workflow_id: str = "plain", task: str = "t"
) -> subprocess.CompletedProcess[str]:
    workflow = tmp_path / "wf.yaml"
    action = {"name": "a", "image": LOCAL_IMAGE, "timeout": 60, "command": ["sh", "-c", f"{PRINTF}; exit 3"]}
    # JSON is YAML: control characters travel as \u escapes in the file
    workflow.write_text(json.dumps({"id": workflow_id, "tasks": [{"name": task, "actions": [action]}]}))
    identifier = f"control-chars-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        "-m",
        "tinklet_core",
        "--identifier",
        identifier,
        *options,
        "run",
        str(workflow),
    ]
    result = subprocess.run(command, capture_output=True, timeout=180, check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def _assert_no_raw(text: str) -> None:
    raw = sorted(
        {f"U+{ord(ch):04X}" for ch in text if ch in RAW or (not ch.isprintable() and ch not in "\n")}
    )
    assert not raw, f"raw control characters {raw} in {text[-1500:]!r}"


def test_an_actions_output_is_escaped_in_the_text_log_and_the_progress_lines(tmp_path: Path) -> None:
    result = _run(tmp_path)
    _assert_no_raw(result.stdout)
    _assert_no_raw(result.stderr)
    assert any(line.endswith(f"plain/t/a | {SHOWN}") for line in result.stderr.splitlines()), result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and SHOWN in failed[0], result.stdout


def test_an_actions_output_is_escaped_in_the_json_log(tmp_path: Path) -> None:
    result = _run(tmp_path, "--log-format", "json")
    _assert_no_raw(result.stderr)  # json.loads turns \u escapes back: check the bytes as written
    records = [json.loads(line) for line in result.stderr.splitlines()]
    output = [record["message"] for record in records if record.get("output")]
    assert output == [f"plain/t/a | {SHOWN}"], output


def test_long_and_hostile_ids_are_escaped_and_shortened_everywhere(tmp_path: Path) -> None:
    result = _run(tmp_path, "--log-format", "json", workflow_id=LONG_ID, task=HOSTILE_TASK)
    _assert_no_raw(result.stdout)
    _assert_no_raw(result.stderr)
    lines = result.stderr.splitlines()
    assert max(len(line) for line in lines) < 2_000, "no line carries the whole 100,000-character id"
    records = [json.loads(line) for line in lines]
    about_the_action = [record for record in records if "workflow_id" in record]
    assert about_the_action
    for record in about_the_action:
        assert record["workflow_id"] == "w" * 64 + f"…[{len(LONG_ID)} chars]"
        assert record["task_id"] == r"t\x1b[1A\x1b[2K\u202eforged"
    assert "w" * 65 not in result.stdout
    assert r"t\x1b[1A\x1b[2K\u202eforged/a" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("workflow " + "w" * 64 + "…[")
