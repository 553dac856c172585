"""Workflow files (Tinkerbell templates) and the local workflow transport."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinklet_core.errors import WorkflowFileError
from tinklet_core.model import Event, State, Volume
from tinklet_core.transports.workflow_file import WorkflowFileTransport
from tinklet_core.workflow import load_workflow, parse_env, parse_volume, parse_workflow

TEMPLATE = """
version: "0.1"
name: ubuntu-install
global_timeout: 1800
tasks:
  - name: os-installation
    worker: "{{.device_1}}"
    volumes:
      - /dev:/dev
    environment:
      MIRROR: http://mirror
      MODE: task
    actions:
      - name: stream-image
        image: quay.io/tinkerbell/actions/image2disk:latest
        timeout: 600
        environment:
          DEST_DISK: /dev/sda
          MODE: action
      - name: kexec
        image: quay.io/tinkerbell/actions/kexec:latest
        pid: host
        command: echo "two words" three
        volumes: ["named:/cache:ro"]
        retries: 2
"""


def test_a_tinkerbell_template_parses(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    workflow = load_workflow(path, agent_id="agent-1")
    stream, kexec = workflow.actions
    assert workflow.workflow_id == "ubuntu-install"
    assert (stream.task_id, stream.action_id, stream.agent_id) == (
        "os-installation",
        "os-installation/stream-image",
        "agent-1",
    )
    assert stream.timeout == 600
    assert stream.env == (("MIRROR", "http://mirror"), ("DEST_DISK", "/dev/sda"), ("MODE", "action"))
    assert stream.volumes == (Volume("/dev", "/dev"),)
    assert kexec.command == ("echo", "two words", "three")
    assert kexec.pid_namespace == "host"
    assert kexec.volumes == (Volume("/dev", "/dev"), Volume("named", "/cache", read_only=True))
    assert kexec.retries == 2
    assert kexec.timeout == 0


def test_repeated_action_names_get_distinct_ids() -> None:
    data = {"tasks": [{"name": "t", "actions": [{"name": "a", "image": "i"}, {"name": "a", "image": "i"}]}]}
    assert [a.action_id for a in parse_workflow(data).actions] == ["t/a", "t/a-2"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tasks": []}, "'tasks' must be a non-empty list"),
        ({"tasks": [{"actions": [{"name": "a", "image": "i"}]}]}, r"tasks\[0\]: 'name' is required"),
        (
            {"tasks": [{"name": "t", "actions": [{"name": "a"}]}]},
            r"tasks\[0\].actions\[0\]: 'image' is required",
        ),
        (
            {"tasks": [{"name": "t", "actions": [{"name": "a", "image": "i", "timeout": "soon"}]}]},
            "timeout must be a whole number",
        ),
        (
            {"tasks": [{"name": "t", "actions": [{"name": "a", "image": "i", "environment": ["NOEQUALS"]}]}]},
            "'NOEQUALS' is not KEY=VALUE",
        ),
        (
            {"tasks": [{"name": "t", "actions": [{"name": "a", "image": "i", "volumes": ["relative"]}]}]},
            "'relative' is not SOURCE:/TARGET",
        ),
    ],
)
def test_malformed_workflows_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_workflow(data)


def test_unreadable_workflow_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowFileError, match="cannot read workflow file"):
        load_workflow(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  - name: t\n    actions: [{name: a}]\n")
    with pytest.raises(WorkflowFileError, match=r"bad.yaml: tasks\[0\].actions\[0\]: 'image' is required"):
        load_workflow(bad)


def test_env_and_volume_syntax() -> None:
    assert parse_env(["A=b c", "EQ=x=y", "EMPTY="]) == (("A", "b c"), ("EQ", "x=y"), ("EMPTY", ""))
    assert parse_volume("/host:/ctr:ro") == Volume("/host", "/ctr", True)
    assert parse_volume("/host:/ctr:rw") == Volume("/host", "/ctr", False)
    assert parse_volume("data:/data").is_host_path is False
    for bad in ["/a", "/a:b", "/a:/b:rx", ":/b"]:
        with pytest.raises(ValueError):
            parse_volume(bad)


def test_workflow_transport_serves_in_order_and_stops_at_a_failure() -> None:
    data = {"tasks": [{"name": "t", "actions": [{"name": n, "image": "i"} for n in ("a", "b", "c")]}]}
    transport = WorkflowFileTransport(parse_workflow(data))
    first = transport.read()
    assert first is not None and first.name == "a"
    transport.write(Event(first, State.RUNNING))
    assert transport.read() == first, "an action is served again until its final state"
    transport.write(Event(first, State.SUCCESS))
    second = transport.read()
    assert second is not None and second.name == "b"
    transport.write(Event(second, State.FAILED))
    assert transport.read() is None
    assert transport.exhausted
