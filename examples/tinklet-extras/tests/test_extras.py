"""The three plugins, each run through tinklet on the Docker runtime by the plugin test kit
(the ``tinklet_kit`` fixture that ``pip install tinklet[testing]`` brings)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tinklet_core.testing.kit import PluginKit

MIRROR = "mirror.test:5000"


def test_the_spool_transport_runs_each_workflow_file_until_its_first_failure(
    tinklet_kit: PluginKit, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    first = tinklet_kit.workflow({"name": "hello", "command": ["echo", "hi"]}, name="first")
    second = tinklet_kit.workflow(
        {"name": "broken", "command": ["sh", "-c", "exit 2"]},
        {"name": "skipped", "command": ["true"]},
        name="second",
    )
    (spool / "1-first.yaml").write_text(yaml.safe_dump(first))
    (spool / "2-second.yaml").write_text(yaml.safe_dump(second))
    run = tinklet_kit.serve(protocol="spool", options={"spool-dir": str(spool)}, until=lambda run: False)
    assert run.states() == [
        ("hello", "RUNNING"),
        ("hello", "SUCCESS"),
        ("broken", "RUNNING"),
        ("broken", "FAILED"),
    ]
    assert (spool / "events.log").read_text().splitlines() == [
        "hello RUNNING", "hello SUCCESS", "broken RUNNING", "broken FAILED",
    ]  # fmt: skip
    assert sorted(path.name for path in spool.iterdir()) == ["1-first.done", "2-second.done", "events.log"]


@pytest.fixture
def mirrored_image(tinklet_kit: PluginKit) -> Iterator[str]:
    """The kit's image, also tagged as if it came from the mirror (removed afterwards)."""
    mirrored = f"{MIRROR}/{tinklet_kit.image}"
    subprocess.run(["docker", "tag", tinklet_kit.image, mirrored], check=True)
    yield mirrored
    subprocess.run(["docker", "rmi", mirrored], check=True, capture_output=True)


def test_the_mirror_runs_allowed_registries_images_from_the_mirror(
    tinklet_kit: PluginKit, mirrored_image: str
) -> None:
    workflow = tinklet_kit.workflow({"name": "one", "command": ["echo", "ran"]})
    options = {"mirror-prefix": MIRROR, "mirror-allow": ["docker.io", "quay.io"], "pull": "never"}
    run = tinklet_kit.run_workflow(workflow, options=options)
    assert run.states() == [("one", "RUNNING"), ("one", "SUCCESS")], run.log
    assert f"INFO kit/t/one: image rewritten to {mirrored_image}" in run.log
    assert run.final("one").action.image == mirrored_image

    untouched = tinklet_kit.run_workflow(workflow, options={**options, "mirror-allow": ["quay.io"]})
    assert untouched.final("one").action.image == tinklet_kit.image


def test_the_audit_log_has_a_line_per_finished_action(tinklet_kit: PluginKit, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    workflow = tinklet_kit.workflow(
        {"name": "ok", "command": ["true"]}, {"name": "bad", "command": ["sh", "-c", "echo oops; exit 3"]}
    )
    tinklet_kit.run_workflow(workflow, options={"audit-log": str(audit)})
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(line["name"], line["state"]) for line in lines] == [("ok", "SUCCESS"), ("bad", "FAILED")]
    assert lines[1]["message"] == "exit code 3; last output: oops"
    assert lines[0]["image"] == tinklet_kit.image and lines[0]["seconds"] >= 0
