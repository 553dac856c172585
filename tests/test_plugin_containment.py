"""A plugin that misbehaves after loading never ends the worker: each mistake fails the action (or,
for a transport, is retried) with a message naming the plugin and its distribution, and the next
action still runs. Through the real ``tinklet`` command, against the in-process test Tink server
and with ``tinklet run``; the plugins are installed distributions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.plugin_kit import PROCESS, assert_one_line_error, install_plugin, tinklet, write_workflow
from tinklet_core.model import State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

GARBAGE_WRAPPER = """
from tinklet_core.hookspecs import hookimpl


@hookimpl(wrapper=True)
def tinklet_execute_action(context):
    outcome = yield
    if context.action.name == "wrapper-garbage":
        return "SUCCESS"
    return outcome
"""

FORGETFUL_WRAPPER = """
from tinklet_core.hookspecs import hookimpl


@hookimpl(wrapper=True)
def tinklet_execute_action(context):
    outcome = yield
    context.log.info("saw %s", outcome.state.value)
"""

BAD_REWRITE = """
from tinklet_core.hookspecs import hookimpl


@hookimpl
def tinklet_rewrite_action(action):
    if action.name == "rewrite-garbage":
        return "mirror.example/" + action.image
    return None
"""

# A transport that gets read() and write() wrong once each, then behaves: for the server, around
# the core's v2 transport; for ``tinklet run``, in place of the core's ``file`` transport.
FLAKY_TRANSPORT = """
from tinklet_core.hookspecs import hookimpl
from tinklet_core.transports.builtin import BUILTIN_TRANSPORTS
from tinklet_core.transports.spec import TransportSpec


class Flaky:
    def __init__(self, inner):
        self.inner = inner
        self.reads = 0
        self.writes = 0

    def read(self):
        self.reads += 1
        if self.reads == 1:
            return {"image": "what is this"}
        if self.reads == 3:
            raise OSError("disk on fire")
        return self.inner.read()

    def write(self, event):
        self.writes += 1
        if self.writes == 2:
            raise OSError("socket on fire")
        self.inner.write(event)

    @property
    def exhausted(self):
        return self.inner.exhausted

    def close(self):
        self.inner.close()


def _core(name):
    return next(spec for _plugin, spec in BUILTIN_TRANSPORTS if spec.name == name)


@hookimpl
def tinklet_transports():
    return [
        TransportSpec("flaky-v2", lambda settings: Flaky(_core("v2").factory(settings))),
        TransportSpec("file", lambda settings: Flaky(_core("file").factory(settings))),
    ]
"""

PLUGINS = (
    ("tinklet-garbage", "garbage", "tinklet_garbage", GARBAGE_WRAPPER),
    ("tinklet-forgetful", "forgetful", "tinklet_forgetful", FORGETFUL_WRAPPER),
    ("tinklet-badrewrite", "badrewrite", "tinklet_badrewrite", BAD_REWRITE),
    ("tinklet-flaky", "flaky", "tinklet_flaky", FLAKY_TRANSPORT),
)
AGENT = "contained"
RUN = ("-p", PROCESS, "-p", "no:core-file", "--runtime", "process", "run")  # the flaky plugin's "file"


def installed(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for distribution, entry, module, source in PLUGINS:
        install_plugin(site, distribution, entry, module, source)
    return site


def echo(name: str) -> dict[str, object]:
    return {"name": name, "image": "none", "command": ["echo", name]}


def one_action_workflow(name: str) -> dict[str, object]:
    return {"name": f"wf-{name}", "tasks": [{"name": "t", "actions": [echo(name)]}]}


def test_a_worker_keeps_serving_whatever_its_plugins_do(tmp_path: Path) -> None:
    site = installed(tmp_path)
    names = ("first", "wrapper-garbage", "rewrite-garbage", "wrapper-forgets", "last")
    workflows = [parse_workflow(one_action_workflow(name), agent_id=AGENT) for name in names]
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    environ = {**os.environ, "PYTHONPATH": path}
    with TinkServer(workflows, AGENT) as server:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "tinklet_core", "-p", PROCESS, "--runtime", "process",
                "--protocol", "flaky-v2", "--tink", server.address, "--identifier", AGENT,
                "--max-backoff", "0.3", "-p", "no:core-file",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ,
        )  # fmt: skip
        done = server.wait_until(lambda: server.workflow_state("wf-last") is State.SUCCESS, timeout=60)
        still_running = process.poll() is None
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert done, output
    assert still_running, output
    assert process.returncode == 0, output
    assert "unexpected" not in output and "Traceback" not in output
    finals = {r.action_name: r for r in server.reports if r.state.is_final}
    assert {name: finals[name].state for name in names} == {
        "first": State.SUCCESS,
        "wrapper-garbage": State.FAILED,
        "rewrite-garbage": State.FAILED,
        "wrapper-forgets": State.SUCCESS,
        "last": State.SUCCESS,
    }
    assert finals["wrapper-garbage"].message.startswith(
        "plugin 'garbage' (distribution tinklet-garbage 1.0): its tinklet_execute_action wrapper "
        "returned str, not an Outcome"
    ), finals["wrapper-garbage"].message
    assert finals["rewrite-garbage"].message.startswith(
        "rewriting the action failed: plugin 'badrewrite' (distribution tinklet-badrewrite 1.0): "
        "tinklet_rewrite_action returned str, not an Action or None"
    ), finals["rewrite-garbage"].message
    assert (
        "plugin 'forgetful' (distribution tinklet-forgetful 1.0): its tinklet_execute_action wrapper "
        "returned None, not the outcome; keeping the runtime's (SUCCESS)"
    ) in output
    assert "no runtime took the action" not in output
    assert (
        "cannot get an action: plugin 'flaky' (distribution tinklet-flaky 1.0): transport read() "
        "returned dict, not an Action or None; retrying"
    ) in output
    assert "transport read() raised OSError: disk on fire; retrying" in output
    assert "transport write() raised OSError: socket on fire; retrying until delivered" in output


def test_tinklet_run_reports_a_plugins_mistake_as_a_failed_action(tmp_path: Path) -> None:
    site = installed(tmp_path)
    garbage = write_workflow(tmp_path / "garbage.yaml", echo("first"), echo("wrapper-garbage"), echo("never"))
    result = tinklet(*RUN, str(garbage), site=site)
    assert result.returncode == 1, result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("SUCCESS  t/first") for line in lines), result.stdout
    failed = next(line for line in lines if line.startswith("FAILED   t/wrapper-garbage"))
    assert "plugin 'garbage' (distribution tinklet-garbage 1.0): its tinklet_execute_action wrapper" in failed
    assert "transport read() returned dict, not an Action or None; retrying" in result.stderr
    assert "transport read() raised OSError: disk on fire; retrying" in result.stderr

    rewrite = write_workflow(tmp_path / "rewrite.yaml", echo("rewrite-garbage"))
    result = tinklet(*RUN, str(rewrite), site=site)
    assert result.returncode == 1, result.stderr
    named = "plugin 'badrewrite' (distribution tinklet-badrewrite 1.0): tinklet_rewrite_action returned str"
    assert named in result.stdout

    forgets = write_workflow(tmp_path / "forgets.yaml", echo("wrapper-forgets"), echo("after"))
    result = tinklet(*RUN, str(forgets), site=site)
    assert result.returncode == 0, result.stderr
    assert "SUCCESS (2 of 2 actions succeeded)" in result.stdout
    assert "plugin 'forgetful' (distribution tinklet-forgetful 1.0): its tinklet_execute_action wrapper" in (
        result.stderr
    )


CLUMSY = """
from tinklet_core import Outcome, RuntimeSpec, State, TransportSpec, hookimpl


class Clumsy:
    def __init__(self, settings):
        pass

    @hookimpl
    def tinklet_execute_action(self, context):
        return Outcome(State.SUCCESS)

    def close(self):
        raise OSError("lost the socket")


def broken_transport(settings):
    raise ValueError("no queue configured")


@hookimpl
def tinklet_runtimes():
    return [RuntimeSpec("clumsy", Clumsy)]


@hookimpl
def tinklet_transports():
    return [TransportSpec("broken", broken_transport, needs_server=False)]
"""


def test_a_runtime_that_fails_to_close_and_a_transport_that_fails_to_open_are_named(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site, "tinklet-clumsy", "clumsy", "tinklet_clumsy", CLUMSY)
    workflow = write_workflow(tmp_path / "wf.yaml", {"name": "a", "image": "none"})
    closed = tinklet("--runtime", "clumsy", "run", str(workflow), site=site)
    assert closed.returncode == 0, closed.stderr
    named = "plugin 'clumsy' (distribution tinklet-clumsy 1.0): closing runtime 'clumsy' failed"
    assert f"{named}: OSError: lost the socket" in closed.stderr
    assert "unexpected" not in closed.stderr
    opened = tinklet("--runtime", "clumsy", "--protocol", "broken", "--identifier", "me", site=site)
    assert_one_line_error(
        opened,
        "plugin 'clumsy' (distribution tinklet-clumsy 1.0): opening transport 'broken' failed: "
        "ValueError: no queue configured",
    )
