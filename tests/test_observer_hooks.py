"""The observer hooks beyond tinklet_action_event: worker state, server contact, report retries
and pull progress reach observers in order, from the observer thread, through a real v2 server."""

from __future__ import annotations

import threading
from collections.abc import Generator

from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Action, Event, Outcome, PullPhase, PullProgress, State
from tinklet_core.plugins import LoadedPlugins, find_runtime, find_transport, open_runtime
from tinklet_core.runtime import ActionContext, RuntimeSettings
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.transports.spec import TransportSettings
from tinklet_core.worker import Worker, WorkerOptions
from tinklet_core.workflow import parse_workflow

AGENT = "observer-hooks"
WORKFLOW = {"name": "wf", "tasks": [{"name": "t", "actions": [
    {"name": "a", "image": "busybox:1", "command": ["echo", "a"]},
    {"name": "b", "image": "busybox:1", "command": ["false"]},
]}]}  # fmt: skip


class PullingWrapper:
    """Reports a pull before the runtime runs, as a runtime (or a pre-puller) would."""

    @hookimpl(wrapper=True)
    def tinklet_execute_action(self, context: ActionContext) -> Generator[None, Outcome, Outcome]:
        image = context.action.image
        context.pull_progress(PullProgress(image, PullPhase.STARTED))
        context.pull_progress(PullProgress(image, PullPhase.PROGRESS, current=512, total=1024))
        context.pull_progress(PullProgress(image, PullPhase.FINISHED, current=1024, total=1024))
        return (yield)


class Recorder:
    """Records every observer hook call and the thread it came from."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.threads: set[str] = set()

    def _note(self, name: str, detail: object) -> None:
        self.calls.append((name, detail))
        self.threads.add(threading.current_thread().name)

    @hookimpl
    def tinklet_worker_state(self, running: bool, runtime: str, protocol: str, agent_id: str) -> None:
        self._note("state", (running, runtime, protocol, agent_id))

    @hookimpl
    def tinklet_server_contact(self, reachable: bool, at: float) -> None:
        self._note("contact", reachable)

    @hookimpl
    def tinklet_report_retry(self, event: Event, gave_up: bool) -> None:
        self._note("retry", (event.action.name, event.state, gave_up))

    @hookimpl
    def tinklet_pull_progress(self, action: Action, progress: PullProgress) -> None:
        self._note("pull", (action.name, progress.phase, progress.current))

    @hookimpl
    def tinklet_action_event(self, event: Event) -> None:
        self._note("event", (event.action.name, event.state))


def test_observers_see_state_contact_retries_and_pulls(process_plugins: LoadedPlugins) -> None:
    manager = process_plugins.manager
    recorder = Recorder()
    manager.register(recorder, name="recorder")
    manager.register(PullingWrapper(), name="pulling")
    settings = RuntimeSettings(agent_id=AGENT)
    stop = threading.Event()
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT) as server:
        server.refuse_reports(2)  # a's SUCCESS is refused twice, then accepted
        transport = find_transport(process_plugins, "v2").factory(
            TransportSettings(server.address, AGENT, cancelled=stop, max_backoff=0.2)
        )
        runtime = open_runtime(manager, find_runtime(process_plugins, "process"), settings)
        worker = Worker(
            transport, manager, settings, stop, WorkerOptions(max_backoff=0.2),
            runtime_name="process", protocol="v2",
        )  # fmt: skip
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            assert server.wait_until(lambda: State.FAILED in server.states_of("t/b"), timeout=20)
        finally:
            stop.set()
            thread.join(15)
            manager.unregister(runtime)
            transport.close()
    calls = recorder.calls
    assert calls[0] == ("state", (True, "process", "v2", AGENT))
    assert calls[-1] == ("state", (False, "process", "v2", AGENT))
    assert [c for c in calls if c[0] == "retry"] == [
        ("retry", ("a", State.SUCCESS, False)), ("retry", ("a", State.SUCCESS, False)),
    ]  # fmt: skip
    assert ("contact", False) in calls and ("contact", True) in calls
    pulls = [detail for name, detail in calls if name == "pull"]
    assert pulls == [
        (name, phase, current)
        for name in ("a", "b")
        for phase, current in ((PullPhase.STARTED, 0), (PullPhase.PROGRESS, 512), (PullPhase.FINISHED, 1024))
    ]
    order = [c for c in calls if c[0] in ("event", "pull")]
    assert order.index(("event", ("a", State.RUNNING))) < order.index(("pull", ("a", PullPhase.STARTED, 0)))
    assert recorder.threads == {"tinklet-observers"}, "observer hooks never run on the worker's thread"
