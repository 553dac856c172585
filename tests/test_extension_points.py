"""The extension surface as third-party plugins use it, through the real ``tinklet`` command:
options owned by their plugin, wrappers around the one runtime that executes, action rewrites,
observers off the hot path, and a third-party transport."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tests.plugin_kit import PROCESS, tinklet, warnings_in, write_module, write_workflow
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Event, State
from tinklet_core.plugins import LoadedPlugins, find_runtime, find_transport, open_runtime
from tinklet_core.runtime import RuntimeSettings
from tinklet_core.transports.spec import TransportSettings
from tinklet_core.worker import Worker, WorkerOptions

PROBE = """
import json
import time
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State
from tinklet_core.runtime import PluginOption, RuntimeSpec


class Probe:
    def __init__(self, settings):
        self.settings = settings

    @hookimpl
    def tinklet_execute_action(self, context):
        context.output(f"image {context.action.image}")
        context.output(f"options {json.dumps(dict(context.settings.options), sort_keys=True)}")
        if context.action.command[:1] == ("sleep",):
            time.sleep(float(context.action.command[1]))
        return Outcome(State.SUCCESS)

    def close(self):
        pass


@hookimpl
def tinklet_runtimes():
    return [
        RuntimeSpec("probe", Probe, options=(PluginOption("probe-level", "how loud the probe is"),)),
        RuntimeSpec("other", Probe, options=(PluginOption("other-secret", "a token only other may see"),)),
    ]
"""

POLICY = """
from tinklet_core.errors import ActionRefused
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State


@hookimpl(wrapper=True)
def tinklet_execute_action(context):
    if context.action.image.startswith("forbidden/"):
        raise ActionRefused(f"image {context.action.image} is not allowed here")
    context.log.info("policy: %s starts", context.action.name)
    outcome = yield
    context.log.info("policy: %s ended %s", context.action.name, outcome.state.value)
    return outcome
"""

THIEF = """
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State


@hookimpl
def tinklet_execute_action(context):
    return Outcome(State.FAILED, reason="stolen by a plugin that is not the runtime")
"""

MIRROR = """
import dataclasses
from tinklet_core.hookspecs import hookimpl


@hookimpl
def tinklet_rewrite_action(action):
    if action.image.startswith("docker.io/"):
        return dataclasses.replace(action, image="mirror.example:5000/" + action.image[len("docker.io/"):])
    return None
"""

METRICS = """
import json
from pathlib import Path
from tinklet_core.hookspecs import hookimpl
from tinklet_core.options import PluginOption


class Exporter:
    def __init__(self, path):
        self.path = path

    @hookimpl
    def tinklet_action_event(self, event):
        with self.path.open("a") as out:
            out.write(f"{event.state.value} {event.action.name}\\n")

    def close(self):
        with self.path.open("a") as out:
            out.write("closed\\n")


@hookimpl
def tinklet_options():
    return [PluginOption("events-file", "where to write the events it saw")]


@hookimpl
def tinklet_configure(options):
    path = Path(options["events_file"])
    path.write_text(json.dumps(sorted(options)) + "\\n")
    return Exporter(path)
"""


def probe_lines(stderr: str, marker: str) -> list[str]:
    return [line.split(" | ", 1)[1] for line in stderr.splitlines() if " | " in line and marker in line]


def test_each_runtime_sees_only_its_own_options(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_probe", PROBE)
    workflow = write_workflow(tmp_path / "wf.yaml", {"name": "a", "image": "busybox"})
    result = tinklet(
        "-p", "tinklet_probe", "--runtime", "probe", "--other-secret", "s3cr3t",
        "run", str(workflow), "--probe-level", "3",
        site=site,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert probe_lines(result.stderr, "options") == ['options {"probe_level": "3"}']


def test_a_plugin_that_is_not_a_runtime_adds_a_flag_and_receives_only_its_value(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_probe", PROBE)
    write_module(site, "tinklet_metrics", METRICS)
    helped = tinklet("-p", "tinklet_metrics", "--help", site=site, env={"COLUMNS": "200"})
    assert helped.returncode == 0, helped.stderr
    panel = helped.stdout[helped.stdout.index("Plugin tinklet_metrics") :]
    assert "--events-file" in panel.split("╰")[0]
    assert "Where to write the events it saw." in panel
    out = tmp_path / "metrics.txt"
    workflow = write_workflow(tmp_path / "wf.yaml", {"name": "a", "image": "x"}, {"name": "b", "image": "y"})
    result = tinklet(
        "-p", "tinklet_metrics", "-p", "tinklet_probe", "--runtime", "probe", "--probe-level", "1",
        "run", str(workflow), "--events-file", str(out),
        site=site,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines() == [
        '["events_file"]', "RUNNING a", "SUCCESS a", "RUNNING b", "SUCCESS b", "closed",
    ]  # fmt: skip
    assert probe_lines(result.stderr, "options") == ['options {"probe_level": "1"}'] * 2


def test_a_wrapper_observes_and_refuses_and_a_plain_implementation_cannot_take_over(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for module, source in (("tinklet_probe", PROBE), ("tinklet_policy", POLICY), ("tinklet_thief", THIEF)):
        write_module(site, module, source)
    workflow = write_workflow(
        tmp_path / "wf.yaml",
        {"name": "fine", "image": "ok/image"},
        {"name": "bad", "image": "forbidden/image"},
    )
    result = tinklet(
        "-p", "tinklet_probe", "-p", "tinklet_policy", "-p", "tinklet_thief", "--runtime", "probe",
        "run", str(workflow),
        site=site,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("SUCCESS  t/fine")
    assert lines[3].startswith("FAILED   t/bad") and lines[3].endswith(
        "refused: image forbidden/image is not allowed here"
    )
    assert "policy: fine starts" in result.stderr and "policy: fine ended SUCCESS" in result.stderr
    assert probe_lines(result.stderr, "image") == ["image ok/image"], "the refused action must never run"
    assert any(
        "'tinklet_thief' implements tinklet_execute_action without wrapper=True" in w
        for w in warnings_in(result)
    )


def test_a_rewrite_plugin_changes_the_image_the_runtime_runs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_probe", PROBE)
    write_module(site, "tinklet_mirror", MIRROR)
    workflow = write_workflow(
        tmp_path / "wf.yaml",
        {"name": "a", "image": "docker.io/library/alpine:3"},
        {"name": "b", "image": "quay.io/x"},
    )
    result = tinklet(
        "-p", "tinklet_probe", "-p", "tinklet_mirror", "--runtime", "probe", "run", str(workflow), site=site
    )
    assert result.returncode == 0, result.stderr
    assert probe_lines(result.stderr, "image") == [
        "image mirror.example:5000/library/alpine:3",
        "image quay.io/x",
    ]
    assert "t/a: image rewritten to mirror.example:5000/library/alpine:3" in result.stderr


class StuckObserver:
    """An observer that blocks on its first event until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.seen: list[tuple[str, State]] = []

    @hookimpl
    def tinklet_action_event(self, event: Event) -> None:
        self.release.wait(30)
        self.seen.append((event.action.name, event.state))


def test_a_slow_observer_never_holds_up_the_worker(process_plugins: LoadedPlugins, tmp_path: Path) -> None:
    workflow = write_workflow(
        tmp_path / "wf.yaml", *({"name": n, "image": "none", "command": ["true"]} for n in ("a", "b", "c"))
    )
    observer = StuckObserver()
    manager = process_plugins.manager
    manager.register(observer, name="stuck")
    transport = find_transport(process_plugins, "file").factory(TransportSettings(str(workflow), "local"))
    settings = RuntimeSettings(agent_id="local")
    delivered: list[tuple[str, State]] = []
    runtime = open_runtime(manager, find_runtime(process_plugins, "process"), settings)
    try:
        worker = Worker(
            transport, manager, settings, threading.Event(), WorkerOptions(),
            on_delivered=lambda e: delivered.append((e.action.name, e.state)),
        )  # fmt: skip
        worker.run()
    finally:
        manager.unregister(runtime)
    expected = [(n, s) for n in ("a", "b", "c") for s in (State.RUNNING, State.SUCCESS)]
    assert delivered == expected, "the worker finished every action while the observer was stuck"
    assert observer.seen == []
    observer.release.set()
    deadline = threading.Event()
    for _ in range(100):
        if len(observer.seen) == len(expected):
            break
        deadline.wait(0.05)
    assert observer.seen == expected, "observers get every event, in order, once they catch up"


DIRECTORY_TRANSPORT = """
import json
from pathlib import Path
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Action
from tinklet_core.options import PluginOption
from tinklet_core.transports.spec import TransportSpec


class DirectoryTransport:
    # Actions are files NAME.json in a directory; each event is a line of events.log.
    def __init__(self, settings):
        self.root = Path(settings.target)
        self.agent = settings.identifier
        self.log = self.root / settings.options["queue_log"]
        self.pending = sorted(self.root.glob("*.json"))

    def read(self):
        if not self.pending:
            return None
        path = self.pending[0]
        spec = json.loads(path.read_text())
        return Action(workflow_id="dir", task_id="q", action_id=path.stem, agent_id=self.agent,
                      name=path.stem, image="none", command=tuple(spec["command"]))

    def write(self, event):
        with self.log.open("a") as out:
            out.write(f"{event.action.name} {event.state.value}\\n")
        if event.state.is_final:
            self.pending.pop(0)

    @property
    def exhausted(self):
        return not self.pending

    def close(self):
        pass


@hookimpl
def tinklet_transports():
    return [TransportSpec("directory", DirectoryTransport, summary="actions from files",
                          options=(PluginOption("queue-log", "file name for events", default="events.log"),))]
"""


def test_a_third_party_transport_runs_a_workflow(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_dirq", DIRECTORY_TRANSPORT)
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "1-hello.json").write_text(json.dumps({"command": ["echo", "hello from a file"]}))
    (queue / "2-bye.json").write_text(json.dumps({"command": ["echo", "bye"]}))
    listed = tinklet("-p", "tinklet_dirq", "plugins", "list", "--json", site=site)
    transports = {entry["name"]: entry for entry in json.loads(listed.stdout)["transports"]}
    assert transports["directory"]["plugin"] == "tinklet_dirq"
    result = tinklet(
        "-p", "tinklet_dirq", "-p", PROCESS, "--runtime", "process", "--protocol", "directory",
        "--tink", str(queue), "--identifier", "me", "--queue-log", "done.log",
        site=site,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (queue / "done.log").read_text().splitlines() == [
        "1-hello RUNNING", "1-hello SUCCESS", "2-bye RUNNING", "2-bye SUCCESS",
    ]  # fmt: skip
    assert "hello from a file" in result.stderr
    wrong = tinklet("--protocol", "nats", "--tink", "x:1", "--identifier", "me")
    assert wrong.returncode == 2 and "'nats' is not one of auto, v1, v1-legacy, v2" in wrong.stderr


RETRY_POLICY = """
import dataclasses
from tinklet_core.hookspecs import hookimpl


@hookimpl
def tinklet_rewrite_action(action):
    return dataclasses.replace(action, retries=2) if action.name.startswith("flaky") else None
"""


def test_a_plugin_retries_by_policy_through_a_rewrite(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_retry", RETRY_POLICY)
    attempts = tmp_path / "attempts"
    script = f"echo x >> {attempts}; test $(wc -l < {attempts}) -ge 3"
    workflow = write_workflow(
        tmp_path / "wf.yaml", {"name": "flaky", "image": "none", "command": ["sh", "-c", script]}
    )
    result = tinklet(
        "-p", "tinklet_retry", "-p", PROCESS, "--runtime", "process", "run", str(workflow), site=site
    )
    assert result.returncode == 0, result.stderr
    assert len(attempts.read_text().splitlines()) == 3
    assert "retry 2 of 2" in result.stderr
