"""The worker loop with real child processes (the process runtime) and the local transport."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tinklet_core.errors import MalformedAction, TransportError
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Action, Event, Outcome, State
from tinklet_core.plugins import LoadedPlugins, find_runtime, open_runtime
from tinklet_core.runtime import ActionContext, RuntimeSettings
from tinklet_core.testing.process_runtime import ProcessRuntime
from tinklet_core.transports.workflow_file import WorkflowFileTransport
from tinklet_core.worker import Backoff, Worker, WorkerOptions, failure_message
from tinklet_core.workflow import parse_workflow

FAST = WorkerOptions(min_backoff=0.01, max_backoff=0.05)


def workflow(*actions: dict[str, Any]) -> WorkflowFileTransport:
    data = {"name": "wf", "tasks": [{"name": "t", "actions": [{"image": "none", **a} for a in actions]}]}
    return WorkflowFileTransport(parse_workflow(data))


@dataclass
class RecordingTransport:
    """Wraps the local transport; refuses writes as told and records what was delivered."""

    inner: WorkflowFileTransport
    refuse: list[TransportError] = field(default_factory=list)
    delivered: list[Event] = field(default_factory=list)
    attempts: int = 0

    def read(self) -> Action | None:
        return self.inner.read()

    def write(self, event: Event) -> None:
        self.attempts += 1
        if event.state.is_final and self.refuse:
            raise self.refuse.pop(0)
        self.delivered.append(event)
        self.inner.write(event)

    @property
    def exhausted(self) -> bool:
        return self.inner.exhausted

    def close(self) -> None:
        pass


def run(plugins: LoadedPlugins, transport: Any, stop: threading.Event | None = None) -> ProcessRuntime:
    runtime = open_runtime(plugins.manager, find_runtime(plugins.manager, "process"), RuntimeSettings())
    Worker(transport, plugins.manager, RuntimeSettings(), stop or threading.Event(), FAST).run()
    assert isinstance(runtime, ProcessRuntime)
    return runtime


def states(transport: RecordingTransport) -> list[tuple[str, State]]:
    return [(e.action.name, e.state) for e in transport.delivered]


def test_runs_actions_in_order_and_stops_at_the_first_failure(process_plugins: LoadedPlugins) -> None:
    transport = RecordingTransport(workflow(
        {"name": "a", "command": ["echo", "hi"]},
        {"name": "b", "command": ["sh", "-c", "echo oops; exit 3"]},
        {"name": "c", "command": ["echo", "never"]},
    ))  # fmt: skip
    run(process_plugins, transport)
    assert states(transport) == [
        ("a", State.RUNNING),
        ("a", State.SUCCESS),
        ("b", State.RUNNING),
        ("b", State.FAILED),
    ]
    failed = transport.delivered[-1]
    assert failed.message == "exit code 3; last output: oops"
    assert failed.started_at is not None and failed.stopped_at is not None
    assert failed.stopped_at >= failed.started_at


def test_timeout_is_reported_and_not_retried(process_plugins: LoadedPlugins) -> None:
    transport = RecordingTransport(
        workflow({"name": "slow", "command": ["sleep", "30"], "timeout": 1, "retries": 3})
    )
    started = time.monotonic()
    run(process_plugins, transport)
    assert states(transport) == [("slow", State.RUNNING), ("slow", State.TIMEOUT)]
    assert time.monotonic() - started < 3


def test_failed_action_is_retried_as_often_as_it_asks(process_plugins: LoadedPlugins, tmp_path: Any) -> None:
    counter = tmp_path / "count"
    script = f"echo x >> {counter}; test $(wc -l < {counter}) -ge 3"
    transport = RecordingTransport(workflow({"name": "flaky", "command": ["sh", "-c", script], "retries": 2}))
    run(process_plugins, transport)
    assert states(transport) == [("flaky", State.RUNNING), ("flaky", State.SUCCESS)]
    assert counter.read_text().count("x") == 3


def test_a_refused_final_report_is_retried_until_delivered(
    process_plugins: LoadedPlugins, tmp_path: Any
) -> None:
    marker = tmp_path / "ran"
    transport = RecordingTransport(
        workflow({"name": "once", "command": ["sh", "-c", f"echo run >> {marker}"]}),
        refuse=[TransportError("unavailable") for _ in range(3)],
    )
    run(process_plugins, transport)
    assert states(transport) == [("once", State.RUNNING), ("once", State.SUCCESS)]
    assert transport.attempts == 5
    assert marker.read_text() == "run\n", "the action must run exactly once"


def test_a_permanently_rejected_report_moves_on(process_plugins: LoadedPlugins) -> None:
    transport = RecordingTransport(
        workflow({"name": "a", "command": ["true"]}),
        refuse=[TransportError("action unknown", retryable=False)],
    )
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    run(process_plugins, transport, stop)
    # the rejected SUCCESS is dropped; the worker keeps going and takes the re-served action
    assert states(transport) == [("a", State.RUNNING), ("a", State.RUNNING), ("a", State.SUCCESS)]


def test_runtime_errors_fail_the_action_not_the_worker(process_plugins: LoadedPlugins) -> None:
    class Exploding:
        @hookimpl(tryfirst=True)
        def tinklet_execute_action(self, context: ActionContext) -> Outcome:
            raise RuntimeError("daemon went away\nwith a second line")

    process_plugins.manager.register(Exploding())
    transport = RecordingTransport(workflow({"name": "a", "command": ["true"]}))
    run(process_plugins, transport)
    assert states(transport) == [("a", State.RUNNING), ("a", State.FAILED)]
    assert transport.delivered[-1].message == "runtime error: daemon went away with a second line"


def test_environment_is_prepared_once_and_cleaned_up(process_plugins: LoadedPlugins) -> None:
    transport = RecordingTransport(
        workflow({"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"]})
    )
    runtime = run(process_plugins, transport)
    assert runtime.prepared == ["wf"]
    assert runtime.cleaned == ["wf"]


def test_a_malformed_action_is_reported_failed(process_plugins: LoadedPlugins) -> None:
    bad = Action("wf", "t", "t/bad", "agent", "bad", "img")

    class Malformed(RecordingTransport):
        sent = False

        def read(self) -> Action | None:
            if not self.sent:
                self.sent = True
                raise MalformedAction("volume 'x' is not SOURCE:/TARGET", bad)
            return None

        @property
        def exhausted(self) -> bool:
            return self.sent

    transport = Malformed(workflow({"name": "a", "command": ["true"]}))
    run(process_plugins, transport)
    assert [(e.action.action_id, e.state) for e in transport.delivered] == [("t/bad", State.FAILED)]
    assert "malformed action: volume 'x'" in transport.delivered[0].message


def test_stop_interrupts_a_running_action_without_a_final_report(process_plugins: LoadedPlugins) -> None:
    transport = RecordingTransport(workflow({"name": "long", "command": ["sleep", "60"]}))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    run(process_plugins, transport, stop)
    assert time.monotonic() - started < 3
    assert states(transport) == [("long", State.RUNNING)]


def test_backoff_is_jittered_and_capped() -> None:
    backoff = Backoff(0.1, 1.0)
    delays = [backoff.next_delay() for _ in range(20)]
    assert all(0.1 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 1
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def test_failure_message_is_bounded() -> None:
    message = failure_message(Outcome(State.FAILED, "exit code 1"), ["x" * 5000])
    assert message.startswith("exit code 1; last output: xxx")
    assert len(message) <= 2000
