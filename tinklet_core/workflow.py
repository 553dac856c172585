"""Workflow files: a Tinkerbell template, run locally or served by the test Tink server.

The format is Tinkerbell's own template YAML, so a template that runs under a Tink server also
runs with ``tinklet run``::

    version: "0.1"
    name: demo                  # becomes the workflow id
    global_timeout: 1800        # accepted, not enforced locally
    tasks:
      - name: provision         # becomes the task id
        worker: "{{.device_1}}" # accepted and ignored: every action runs here
        volumes: [/dev:/dev]    # added to every action of the task
        environment: {A: b}     # added to every action of the task (an action's own value wins)
        actions:
          - name: hello
            image: tinklet/busybox
            timeout: 60         # seconds; 0 or absent = no limit
            command: [echo, hello]
            environment: {GREETING: "hello world"}   # or a list of KEY=VALUE strings
            volumes: ["/etc/hostname:/host-hostname:ro"]
            pid: host           # or namespaces: {pid: host, network: host}
            retries: 1          # tinklet extension: re-run a FAILED action this many times

Action ids are ``TASK/ACTION`` (numbered when a name repeats in a task).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinklet_core.errors import WorkflowFileError
from tinklet_core.model import Action, Volume
from tinklet_core.redaction import described_value
from tinklet_core.yaml_files import read_yaml_file


@dataclass(frozen=True)
class Task:
    """A task: a name and its actions, in order."""

    name: str
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Workflow:
    """A parsed workflow file."""

    workflow_id: str
    tasks: tuple[Task, ...]

    @property
    def actions(self) -> list[Action]:
        """Every action of every task, in the order they run."""
        return [action for task in self.tasks for action in task.actions]


def parse_env(items: Iterable[str], where: str = "environment") -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` strings to pairs; the value keeps spaces and further ``=``."""
    pairs = []
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ValueError(f"{where}: {described_value('environment', item)} is not KEY=VALUE")
        pairs.append((key, value))
    return tuple(pairs)


def parse_volume(text: str) -> Volume:
    """Tink's volume syntax: ``/host:/ctr``, ``/host:/ctr:ro`` (or ``:rw``), ``name:/ctr``."""
    parts = str(text).split(":")
    mode = ""
    if len(parts) == 3:
        mode = parts.pop()
    if len(parts) != 2 or not parts[0] or not parts[1].startswith("/") or mode not in ("", "ro", "rw"):
        raise ValueError(f"volume {described_value('volume', text)} is not SOURCE:/TARGET[:ro|rw]")
    return Volume(source=parts[0], target=parts[1], read_only=mode == "ro")


def load_workflow(path: Path, agent_id: str = "local") -> Workflow:
    """Read and check a workflow file; errors name the file and the faulty field."""
    shown = described_value("workflow", str(path), path=True)
    data = read_yaml_file(
        path,
        WorkflowFileError,
        f"cannot read workflow file {shown}",
        f"workflow file {shown} is not valid YAML",
    )
    try:
        return parse_workflow(data, agent_id=agent_id, default_id=path.stem)
    except ValueError as exc:
        raise WorkflowFileError(f"{shown}: {exc}") from None


def parse_workflow(data: Any, agent_id: str = "local", default_id: str = "workflow") -> Workflow:
    """Build a :class:`Workflow` from parsed YAML; raise ``ValueError`` naming the bad field."""
    if not isinstance(data, dict):
        raise ValueError("a workflow must be a mapping with 'tasks'")
    workflow_id = str(data.get("id") or data.get("name") or default_id)
    tasks_data = data.get("tasks")
    if not isinstance(tasks_data, list) or not tasks_data:
        raise ValueError("'tasks' must be a non-empty list")
    tasks = []
    for task_index, task_data in enumerate(tasks_data):
        where = f"tasks[{task_index}]"
        if not isinstance(task_data, dict):
            raise ValueError(f"{where} must be a mapping")
        tasks.append(_parse_task(task_data, where, workflow_id, agent_id))
    return Workflow(workflow_id=workflow_id, tasks=tuple(tasks))


def _parse_task(data: dict[str, Any], where: str, workflow_id: str, agent_id: str) -> Task:
    name = str(data.get("name") or "").strip()
    if not name:
        raise ValueError(f"{where}: 'name' is required")
    actions_data = data.get("actions")
    if not isinstance(actions_data, list) or not actions_data:
        raise ValueError(f"{where}: 'actions' must be a non-empty list")
    task_env = _env(data.get("environment"), f"{where}.environment")
    task_volumes = _volumes(data.get("volumes"), f"{where}.volumes")
    seen: dict[str, int] = {}
    actions = []
    for index, action_data in enumerate(actions_data):
        action_where = f"{where}.actions[{index}]"
        if not isinstance(action_data, dict):
            raise ValueError(f"{action_where} must be a mapping")
        action_name = str(action_data.get("name") or "").strip()
        if not action_name:
            raise ValueError(f"{action_where}: 'name' is required")
        seen[action_name] = seen.get(action_name, 0) + 1
        suffix = f"-{seen[action_name]}" if seen[action_name] > 1 else ""
        actions.append(
            _parse_action(
                action_data,
                action_where,
                ids=(workflow_id, name, f"{name}/{action_name}{suffix}", agent_id),
                task_env=task_env,
                task_volumes=task_volumes,
            )
        )
    return Task(name=name, actions=tuple(actions))


def _parse_action(
    data: dict[str, Any],
    where: str,
    ids: tuple[str, str, str, str],
    task_env: tuple[tuple[str, str], ...],
    task_volumes: tuple[Volume, ...],
) -> Action:
    image = str(data.get("image") or "").strip()
    if not image:
        raise ValueError(f"{where}: 'image' is required")
    own_env = _env(data.get("environment"), f"{where}.environment")
    own_keys = {key for key, _value in own_env}
    env = tuple(pair for pair in task_env if pair[0] not in own_keys) + own_env
    namespaces = data.get("namespaces") or {}
    if not isinstance(namespaces, dict):
        raise ValueError(f"{where}.namespaces must be a mapping with 'pid' and/or 'network'")
    workflow_id, task_id, action_id, agent_id = ids
    return Action(
        workflow_id=workflow_id,
        task_id=task_id,
        action_id=action_id,
        agent_id=agent_id,
        name=str(data["name"]),
        image=image,
        timeout=_int(data.get("timeout", 0), f"{where}.timeout", signed=True),  # < 0: malformed when run
        command=_command(data.get("command"), f"{where}.command"),
        env=env,
        volumes=task_volumes + _volumes(data.get("volumes"), f"{where}.volumes"),
        pid_namespace=str(namespaces.get("pid") or data.get("pid") or ""),
        network_namespace=str(namespaces.get("network") or ""),
        retries=_int(data.get("retries", 0), f"{where}.retries"),
    )


def _int(value: Any, where: str, *, signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        shown = described_value("number", value)
        raise ValueError(f"{where} must be a whole number of seconds/times, got {shown}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{where} must be a whole number, got {described_value('number', value)}") from None
    if number < 0 and not signed:
        raise ValueError(f"{where} must not be negative")
    return number


def _command(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, list):
        return tuple(str(part) for part in value)
    raise ValueError(f"{where} must be a list of strings")


def _env(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple((str(key), "" if item is None else str(item)) for key, item in value.items())
    if isinstance(value, list):
        return parse_env(value, where)
    raise ValueError(f"{where} must be a mapping or a list of KEY=VALUE")


def _volumes(value: Any, where: str) -> tuple[Volume, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list")
    try:
        return tuple(parse_volume(item) for item in value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
