"""A docker daemon that goes away and comes back: the action is judged by its container, not by
the broken connection.

The "daemon" the runtime talks to is a socket proxy in front of the real dockerd: stopping it
cuts every connection and removes the socket (what a dying daemon looks like to a client),
while the container runs on, as it does when a real dockerd dies (containerd's shim keeps it).
Starting a new proxy at the same path is the daemon coming back. The suite with a real private
dockerd killed and restarted is ``tests/test_engine_faults.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import SocketProxy, make_action, make_run, run_in_thread
from tinklet_docker import DockerRuntime
from tinklet_docker.engine import tinklet_containers

from tinklet_core.errors import ActionInterrupted
from tinklet_core.model import State
from tinklet_core.runtime import RuntimeSettings


class Daemon:
    """The proxy socket the runtime uses, which can die and come back at the same path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proxy: SocketProxy | None = SocketProxy(path)

    @property
    def url(self) -> str:
        """The docker URL the runtime is given."""
        return f"unix://{self.path}"

    def die(self) -> None:
        """Cut every connection and refuse new ones."""
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    def come_back(self) -> None:
        """Answer again at the same socket."""
        self.proxy = self.proxy or SocketProxy(self.path)

    def come_back_in(self, seconds: float) -> threading.Timer:
        """Answer again after ``seconds``."""
        timer = threading.Timer(seconds, self.come_back)
        timer.start()
        return timer


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon proxy, stopped after the test."""
    proxied = Daemon(tmp_path / "docker.sock")
    yield proxied
    proxied.die()


@pytest.fixture
def runtime_via(daemon: Daemon, agent_id: str, docker_api: Any) -> Iterator[DockerRuntime]:
    """A runtime on the proxy; no container of ours may outlive the test."""
    opened = DockerRuntime(RuntimeSettings(agent_id=agent_id, options={"docker_host": daemon.url}))
    yield opened
    opened.close()
    left = tinklet_containers(docker_api, agent_id)
    for name in left:
        docker_api.remove_container(name, force=True)
    assert left == [], f"containers left behind: {left}"


def test_an_action_whose_daemon_dies_and_returns_reports_its_real_exit_code_and_output(
    daemon: Daemon, runtime_via: DockerRuntime, agent_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    script = "echo before; sleep 2; echo during the outage; sleep 1; echo after; exit 3"
    run = make_run(make_action(agent_id, ["sh", "-c", script]), deadline_in=60)
    before = run.printed("before")
    thread, result = run_in_thread(runtime_via, run)
    assert before.wait(15)
    with caplog.at_level(logging.INFO, logger="tinklet.docker"):
        daemon.die()
        daemon.come_back_in(4).join()
        thread.join(30)
    assert not thread.is_alive()
    (outcome,) = result
    assert (outcome.state, outcome.exit_code, outcome.reason) == (State.FAILED, 3, "exit code 3")
    assert run.lines == ["before", "during the outage", "after"]
    messages = [record.getMessage() for record in caplog.records]
    outage = [text for text in messages if "waiting for the engine to come back" in text]
    assert len(outage) == 1 and "is not reachable" in outage[0]
    assert any("the engine answers again" in text for text in messages)


def test_an_action_handed_out_while_the_daemon_is_down_runs_when_it_returns(
    daemon: Daemon, runtime_via: DockerRuntime, agent_id: str
) -> None:
    daemon.die()
    run = make_run(make_action(agent_id, ["echo", "ran after the outage"]), deadline_in=60)
    thread, result = run_in_thread(runtime_via, run)
    time.sleep(1.5)
    assert thread.is_alive() and run.lines == []  # waiting, not failed
    daemon.come_back()
    thread.join(30)
    (outcome,) = result
    assert outcome.state is State.SUCCESS
    assert run.lines == ["ran after the outage"]


def test_a_container_removed_during_the_outage_is_reported_lost(
    daemon: Daemon, runtime_via: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    action = make_action(agent_id, ["sh", "-c", "echo up; sleep 60"])
    run = make_run(action, deadline_in=60)
    up = run.printed("up")
    thread, result = run_in_thread(runtime_via, run)
    assert up.wait(15)
    daemon.die()
    for name in tinklet_containers(docker_api, agent_id):
        docker_api.remove_container(name, force=True)
    daemon.come_back_in(1)
    thread.join(30)
    (outcome,) = result
    assert outcome.state is State.FAILED
    assert outcome.reason.startswith("engine lost the container ")


def test_a_daemon_that_stays_away_times_the_action_out_and_its_container_goes_once_it_returns(
    daemon: Daemon, runtime_via: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    run = make_run(make_action(agent_id, ["sh", "-c", "echo up; sleep 60"]), deadline_in=4)
    up = run.printed("up")
    thread, result = run_in_thread(runtime_via, run)
    assert up.wait(15)
    daemon.die()
    thread.join(10)
    (outcome,) = result
    assert outcome.state is State.TIMEOUT
    assert len(tinklet_containers(docker_api, agent_id)) == 1  # could not be killed while away
    daemon.come_back()
    later = make_run(make_action(agent_id, ["true"]), deadline_in=60)
    assert runtime_via.tinklet_execute_action(later.context).state is State.SUCCESS
    assert tinklet_containers(docker_api, agent_id) == []  # removed before the next action ran


def test_shutdown_while_the_daemon_is_down_creates_nothing(
    daemon: Daemon, runtime_via: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    daemon.die()
    run = make_run(make_action(agent_id, ["echo", "never"]), deadline_in=60)
    thread, result = run_in_thread(runtime_via, run)
    time.sleep(0.5)
    run.context.cancelled.set()
    thread.join(10)
    (error,) = result
    assert isinstance(error, ActionInterrupted)
    daemon.come_back()
    assert tinklet_containers(docker_api, agent_id) == []


def test_shutdown_before_the_container_is_created_creates_nothing(
    runtime_via: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    run = make_run(make_action(agent_id, ["echo", "never"]), deadline_in=60)
    run.context.cancelled.set()
    with pytest.raises(ActionInterrupted):
        runtime_via.tinklet_execute_action(run.context)
    assert run.lines == [] and tinklet_containers(docker_api, agent_id) == []


def test_a_container_left_while_the_daemon_was_away_is_removed_when_the_runtime_closes(
    daemon: Daemon, runtime_via: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    run = make_run(make_action(agent_id, ["sh", "-c", "echo up; sleep 60"]), deadline_in=3)
    up = run.printed("up")
    thread, result = run_in_thread(runtime_via, run)
    assert up.wait(15)
    daemon.die()
    thread.join(10)
    assert result[0].state is State.TIMEOUT
    assert len(tinklet_containers(docker_api, agent_id)) == 1
    daemon.come_back()
    runtime_via.close()  # (the fixture closes it again: harmless)
    assert tinklet_containers(docker_api, agent_id) == []
