"""``--log-format``: json is one object per line carrying the action's ids; text is unchanged."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

from tests.plugin_kit import PROCESS, tinklet, write_workflow
from tinklet_core.log_format import ActionLogger, formatter_for
from tinklet_core.model import Action
from tinklet_core.worker import OutputTail

SECRET = "pw-that-must-not-leak"
LOGIN = json.dumps({"name": "registry.example:5000", "user": "u", "password": SECRET})
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR)\s* [\w.]+: ")


def failing_workflow(tmp_path: Path) -> Path:
    return write_workflow(
        tmp_path / "wf.yaml",
        {"name": "greet", "image": "none", "command": ["echo", "hello"]},
        {"name": "break", "image": "none", "command": ["sh", "-c", "echo about to fail; exit 3"]},
    )


def run(tmp_path: Path, *options: str) -> str:
    result = tinklet(
        "-p", PROCESS, "--runtime", "process", "--registry", LOGIN, *options,
        "run", str(failing_workflow(tmp_path)),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert SECRET not in result.stderr + result.stdout
    return result.stderr


def test_json_logs_parse_line_by_line_and_carry_the_ids(tmp_path: Path) -> None:
    stderr = run(tmp_path, "--log-format", "json")
    records = [json.loads(line) for line in stderr.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    assert any(r["level"] == "warning" and "--registry" in r["message"] for r in records), records

    output = [r for r in records if r.get("output")]
    assert [r["message"].rsplit(" | ", 1)[1] for r in output] == ["hello", "about to fail"]
    assert output[1]["task_id"] == "t" and output[1]["action_id"] == "t/break"
    assert output[1]["workflow_id"] == "local" and output[1]["agent_id"] == "local"

    failed = [r for r in records if r["level"] == "error"]
    assert len(failed) == 1 and "FAILED" in failed[0]["message"], records
    ids = (failed[0]["workflow_id"], failed[0]["task_id"], failed[0]["action_id"])
    assert ids == ("local", "t", "t/break")
    assert "output" not in failed[0]
    assert all("action_id" not in r for r in records if "--registry" in r["message"])


def test_text_logs_keep_their_format(tmp_path: Path) -> None:
    stderr = run(tmp_path)
    lines = stderr.splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), stderr
    assert any(line.endswith("tinklet.worker: local/t/break | about to fail") for line in lines), stderr
    assert not any(line.lstrip().startswith("{") for line in lines)


def test_an_unknown_log_format_is_one_line(tmp_path: Path) -> None:
    result = tinklet("--log-format", "xml", "run", str(failing_workflow(tmp_path)))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("tinklet: error: --log-format"), result.stderr


def output_batch_logged_as(log_format: str) -> list[str]:
    """The log lines of one batch of three output lines of an action, through the worker's
    output path and the formatter ``--log-format`` picks."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(log_format))
    base = logging.getLogger(f"tinklet.batch_{log_format}")
    base.addHandler(handler)
    base.propagate = False
    base.setLevel(logging.INFO)
    action = Action("wf", "t", "t/say", "worker-1", "say", "img", command=("true",))
    try:
        OutputTail(action, ActionLogger(base, action, output=True), keep=5).write_lines(
            ["one", "two", "three"]
        )
    finally:
        base.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_every_line_of_an_output_batch_has_its_own_time_and_level_in_text() -> None:
    lines = output_batch_logged_as("text")
    assert len(lines) == 3 and all(TEXT_LINE.match(line) for line in lines), lines
    assert [line.rsplit(": ", 1)[1] for line in lines] == [
        "wf/t/say | one",
        "wf/t/say | two",
        "wf/t/say | three",
    ]


def test_every_line_of_an_output_batch_is_its_own_json_object() -> None:
    records = [json.loads(line) for line in output_batch_logged_as("json")]
    assert [r["message"] for r in records] == ["wf/t/say | one", "wf/t/say | two", "wf/t/say | three"]
    assert all(r["output"] is True and r["action_id"] == "t/say" and r["level"] == "info" for r in records)
    assert len({r["time"] for r in records}) == 1
