"""containerd restarted in the middle of an action: the shim keeps the task (and the FIFOs keep
the output flowing), so the runtime waits for containerd and reports the action's true outcome
with every line, as for Docker and Podman. Each test has a private containerd of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from containerd_support import PrivateContainerd, containerd_missing, containerd_with_test_image, options
from tinklet_containerd.runtime import ContainerdRuntime

from tinklet_core.model import Action, Outcome, State
from tinklet_core.runtime import ActionContext, RuntimeSettings


@pytest.fixture
def restartable() -> Iterator[PrivateContainerd]:
    """A private containerd this test may stop and start, holding the test image."""
    missing = containerd_missing()
    if missing:
        pytest.skip(missing)
    with containerd_with_test_image() as daemon:
        yield daemon


def run_with_outage(
    daemon: PrivateContainerd, agent_id: str, script: str, down_at: float, up_at: float
) -> tuple[Outcome, list[str], float]:
    """Run ``script``; stop containerd ``down_at`` seconds after the action's first line and
    start it again at ``up_at``. The outcome, the lines and how long the action took."""
    runtime = ContainerdRuntime(RuntimeSettings(agent_id=agent_id, options=options(daemon)))
    lines: list[str] = []
    first_line = threading.Event()

    def output(batch: list[str]) -> None:
        lines.extend(batch)
        first_line.set()

    def outage() -> None:
        first_line.wait(30)
        time.sleep(down_at)
        daemon.stop()
        time.sleep(up_at - down_at)
        daemon.start()

    unique = f"{time.monotonic_ns()}"
    action = Action(f"wf-{unique}", "t", f"a-{unique}", agent_id, "outage", "tinklet/busybox:latest",
                    command=("sh", "-c", script))  # fmt: skip
    context = ActionContext(action, runtime.settings, None, threading.Event(), lambda _: None,
                            lambda _image: None, logging.getLogger("test"), output_lines=output)  # fmt: skip
    disruptor = threading.Thread(target=outage, daemon=True)
    disruptor.start()
    started = time.monotonic()
    try:
        outcome = runtime.tinklet_execute_action(context)
    finally:
        elapsed = time.monotonic() - started
        disruptor.join(30)
        runtime.close()
    return outcome, lines, elapsed


def test_a_restart_while_the_action_runs_gives_its_outcome_and_every_line(
    restartable: PrivateContainerd, agent_id: str
) -> None:
    script = "for i in $(seq 1 30); do echo line $i; sleep 0.1; done"
    outcome, lines, _ = run_with_outage(restartable, agent_id, script, down_at=0.5, up_at=1.5)
    assert outcome.state is State.SUCCESS, outcome.reason
    assert lines == [f"line {i}" for i in range(1, 31)]
    assert restartable.ctr("containers", "ls", "-q").stdout.split() == []


def test_an_action_that_fails_while_containerd_is_away_is_reported_failed(
    restartable: PrivateContainerd, agent_id: str
) -> None:
    script = "echo before; sleep 1; echo after; exit 3"
    outcome, lines, _ = run_with_outage(restartable, agent_id, script, down_at=0.3, up_at=3.0)
    assert outcome.state is State.FAILED and outcome.exit_code == 3, outcome.reason
    assert lines == ["before", "after"]
    assert restartable.ctr("containers", "ls", "-q").stdout.split() == []
    assert restartable.ctr("tasks", "ls", "-q").stdout.split() == []
