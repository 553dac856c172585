"""The plugin test kit (fixture ``tinklet_kit``) runs workflows through a rewrite, a wrapper, an
observer and a transport on the real Docker runtime, and the runtime behaviour suite takes core
options, so it passes on a host that refuses privileged containers."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinklet_core import (
    Action,
    ActionContext,
    ActionRefused,
    Event,
    PluginOption,
    State,
    TransportSettings,
    TransportSpec,
    hookimpl,
)
from tinklet_core.testing.kit import KitRun, PluginKit

TEMPLATE = Path(__file__).parent.parent / "examples" / "tinklet-dockercli"


class Tagger:
    """A rewrite, a wrapper and an observer in one plugin object."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def tinklet_options(self) -> list[PluginOption]:
        return [PluginOption("tagger-deny", "names to refuse", kind=list)]

    @hookimpl
    def tinklet_rewrite_action(self, action: Action) -> Action:
        return dataclasses.replace(action, env=(*action.env, ("TAGGED", "yes")))

    @hookimpl(wrapper=True)
    def tinklet_execute_action(self, context: ActionContext):  # type: ignore[no-untyped-def]
        if context.action.name == "refused":
            raise ActionRefused("refused by the tagger")
        outcome = yield
        return outcome

    @hookimpl
    def tinklet_action_event(self, event: Event) -> None:
        self.seen.append((event.action.name, event.state.value, dict(event.action.env).get("TAGGED", "")))


def test_the_kit_runs_a_workflow_through_plugin_objects_on_docker(tinklet_kit: PluginKit) -> None:
    tagger = Tagger()
    workflow = tinklet_kit.workflow(
        {"name": "show", "command": ["sh", "-c", 'echo "tagged=$TAGGED"']},
        {"name": "refused", "command": ["true"]},
    )
    run = tinklet_kit.run_workflow(workflow, plugins=[tagger])
    assert run.states() == [
        ("show", "RUNNING"),
        ("show", "SUCCESS"),
        ("refused", "RUNNING"),
        ("refused", "FAILED"),
    ]
    assert run.final("refused").message == "refused: refused by the tagger"
    assert "INFO kit/t/show | tagged=yes" in run.log, run.log
    assert ("show", "SUCCESS", "yes") in tagger.seen, "the observer saw the rewritten action"


def test_the_kit_serves_a_workflow_from_the_test_tink_server(tinklet_kit: PluginKit) -> None:
    run = tinklet_kit.serve(tinklet_kit.workflow({"name": "one", "command": ["echo", "from the server"]}))
    assert [(r.action_name, r.state) for r in run.reports] == [("one", State.RUNNING), ("one", State.SUCCESS)]
    assert "INFO kit/t/one | from the server" in run.log


class ListTransport:
    """A transport plugin object serving a fixed list of actions."""

    def __init__(self) -> None:
        self.written: list[tuple[str, str]] = []

    @hookimpl
    def tinklet_transports(self) -> list[TransportSpec]:
        return [TransportSpec("listed", self.open, needs_server=False)]

    def open(self, settings: TransportSettings) -> ListTransport:
        self.pending = [
            Action(
                "wf",
                "t",
                f"a{index}",
                settings.identifier,
                f"a{index}",
                "tinklet/busybox:latest",
                command=command,
            )
            for index, command in enumerate((("echo", "one"), ("sh", "-c", "exit 3")))
        ]
        return self

    def read(self) -> Action | None:
        return self.pending[0] if self.pending else None

    def write(self, event: Event) -> None:
        self.written.append((event.action.name, event.state.value))
        if event.state.is_final:
            self.pending.pop(0)

    @property
    def exhausted(self) -> bool:
        return not self.pending

    def close(self) -> None:
        pass


def test_the_kit_serves_through_a_transport_plugin(tinklet_kit: PluginKit) -> None:
    transport = ListTransport()
    run = tinklet_kit.serve(
        plugins=[transport], protocol="listed", until=lambda run: len(run.finals) == 2, timeout=60
    )
    assert transport.written == [("a0", "RUNNING"), ("a0", "SUCCESS"), ("a1", "RUNNING"), ("a1", "FAILED")]
    assert run.final("a1").message.startswith("exit code 3")


def test_the_kit_passes_plugin_options_and_reports_a_run_that_never_ends(tinklet_kit: PluginKit) -> None:
    seen: list[object] = []

    class Configured:
        @hookimpl
        def tinklet_options(self) -> list[PluginOption]:
            return [PluginOption("kit-names", "names", kind=list)]

        @hookimpl
        def tinklet_configure(self, options: dict[str, object]) -> None:
            seen.append(options["kit_names"])

    workflow = tinklet_kit.workflow({"name": "one", "command": ["true"]})
    with pytest.raises(TimeoutError, match="did not end within 3 s"):
        tinklet_kit.serve(
            workflow,
            plugins=[Configured()],
            options={"kit-names": ["a", "b"]},
            until=lambda run: False,
            timeout=3,
        )
    assert seen == [("a", "b")]
    assert isinstance(KitRun().finals, list)


REFUSES_PRIVILEGED = """
from tinklet_core import ActionRefused, Privilege, hookimpl


@hookimpl(wrapper=True)
def tinklet_execute_action(context):
    if context.settings.privilege is Privilege.PRIVILEGED:
        raise ActionRefused("this host refuses privileged containers")
    return (yield)
"""

SUITE_CASES = "test_privilege_is_the_configured_one or test_output_is_streamed or test_worker_runs_a_workflow"


def run_suite(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tinklet_refuses_privileged.py").write_text(textwrap.dedent(REFUSES_PRIVILEGED))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TEMPLATE)])}
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", "-k", SUITE_CASES,
        "--tinklet-runtime", "dockercli", "--tinklet-plugin", "tinklet_dockercli",
        "--tinklet-plugin", "tinklet_refuses_privileged",
        "--tinklet-leftovers", "tinklet_dockercli.testing:leftovers", *extra,
    ]  # fmt: skip
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


def test_the_suite_runs_on_a_host_that_refuses_privileged_containers(tmp_path: Path) -> None:
    refused = run_suite(tmp_path)
    assert refused.returncode == 1 and "3 failed" in refused.stdout, refused.stdout[-3000:]
    assert "this host refuses privileged containers" in refused.stdout
    passed = run_suite(tmp_path, "--tinklet-core-option", "action-privilege=all-caps")
    assert passed.returncode == 0, passed.stdout[-3000:]
    assert "3 passed" in passed.stdout


def test_the_docker_plugins_leftovers_function_serves_the_suite(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE",
        "-k", "test_nothing_survives_shutdown or test_a_running_action_is_labelled",
        "--tinklet-runtime", "docker", "--tinklet-leftovers", "tinklet_docker.testing:leftovers",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed" in result.stdout
