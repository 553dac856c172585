"""Podman failures name their cause, and the service tinklet started is supervised.

The worker-level run (service SIGKILLed mid-action, restarted, true outcome reported) is in
``tests/test_engine_faults.py``; these check the pieces on a real service.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import pytest
from podman_support import AGENT, ServiceProcess, execute, leftovers, make_action, process_alive, wait_until
from tinklet_podman.engine import PodmanEngine, probe
from tinklet_podman.runtime import PodmanRuntime
from tinklet_podman.service import ROOT_SOCKET

from tinklet_core.containers.engine import ContainerGone, EngineFailure, EngineUnreachable
from tinklet_core.model import State
from tinklet_core.runtime import RuntimeSettings


def own_service_runtime(tmp_path: Path) -> PodmanRuntime:
    """A runtime that starts its own private service (skipped when root's socket answers)."""
    if probe(f"unix://{ROOT_SOCKET}") is None:
        pytest.skip(f"a Podman service answers at {ROOT_SOCKET}; the runtime would rightly use it")
    return PodmanRuntime(RuntimeSettings(agent_id=AGENT, options={"xdg_runtime_dir": str(tmp_path / "none")}))


def test_an_engine_error_names_the_http_status_and_podmans_message(podman_service: ServiceProcess) -> None:
    engine = PodmanEngine(podman_service.url)
    try:
        with pytest.raises(EngineFailure) as failed:
            engine.start("tinklet-no-such-container")
        with pytest.raises(ContainerGone) as gone:
            engine.exit_code("tinklet-no-such-container")
    finally:
        engine.close()
    assert str(failed.value).startswith("container failed to start: HTTP 404: ")
    assert "tinklet-no-such-container" in str(failed.value)
    assert str(gone.value).startswith("container inspect failed: HTTP 404: ")


def test_an_unreachable_socket_names_the_socket_and_the_systems_reason(tmp_path: Path) -> None:
    url = f"unix://{tmp_path / 'gone.sock'}"
    engine = PodmanEngine(url)
    try:
        with pytest.raises(EngineUnreachable) as unreachable:
            engine.wait("anything")
    finally:
        engine.close()
    assert str(unreachable.value) == (
        f"waiting for the container failed: Podman at {url} is not reachable: No such file or directory"
    )


def test_a_dead_service_is_restarted_and_the_next_action_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tinklet.podman")
    runtime = own_service_runtime(tmp_path)
    first = runtime.service_pid
    try:
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: not process_alive(first), 10)
        run = execute(runtime, make_action(["echo", "after the restart"]))
        assert run.outcome is not None and run.outcome.state is State.SUCCESS, run
        assert run.lines == ["after the restart"]
        second = runtime.service_pid
        assert second is not None and second != first and process_alive(second)
    finally:
        runtime.close()
    assert f"podman system service tinklet started (pid {first}) died (status -9)" in caplog.text
    assert f"restarted by tinklet (pid {second})" in caplog.text
    assert not process_alive(second)


def test_closing_never_claims_to_stop_a_service_that_was_already_dead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tinklet.podman")
    runtime = own_service_runtime(tmp_path)
    pid = runtime.service_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not process_alive(pid), 10)
    runtime.close()
    assert "stopped the podman system service" not in caplog.text
    assert (
        f"the podman system service tinklet started (pid {pid}) had already exited (status -9)" in caplog.text
    )


def test_a_deadline_while_the_service_is_dead_still_kills_the_container(tmp_path: Path) -> None:
    """The output comes from conmon, which outlives the service: the runtime must not wait for
    the container to end by itself. At the deadline the service is restarted and the container
    killed and removed."""
    runtime = own_service_runtime(tmp_path)
    pid = runtime.service_pid
    assert pid is not None
    killer = threading.Timer(1.5, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        run = execute(runtime, make_action(["sh", "-c", "echo up; sleep 60"]), deadline_in=4)
        assert run.outcome is not None and run.outcome.state is State.TIMEOUT, run
        assert run.lines == ["up"]
        assert leftovers() == []
    finally:
        killer.cancel()
        runtime.close()
