"""The docker runtime as a plugin: discovery, opening, an unreachable daemon, leftovers."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest
from docker_support import IMAGE, SocketProxy, make_action, make_run
from tinklet_docker import DockerRuntime, tinklet_runtimes
from tinklet_docker.engine import tinklet_containers

from tinklet_core.errors import RuntimeUnavailable
from tinklet_core.lazy_factory import LazyFactory
from tinklet_core.model import State
from tinklet_core.plugins import describe_plugins, find_runtime, load_plugins, open_runtime
from tinklet_core.runtime import RuntimeSettings


def test_listing_the_plugin_does_not_import_docker_py() -> None:
    code = "import sys, tinklet_docker; tinklet_docker.tinklet_runtimes(); print('docker' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_spec_names_the_runtime_class_and_its_option() -> None:
    (spec,) = tinklet_runtimes()
    assert isinstance(spec.factory, LazyFactory)  # the runtime module is imported when opened
    assert (spec.name, spec.factory.resolve()) == ("docker", DockerRuntime)
    assert [option.name for option in spec.options] == ["docker-host"]


def test_the_entry_point_provides_docker_and_its_hooks_are_listed() -> None:
    loaded = load_plugins()
    factory = find_runtime(loaded.manager, "docker").factory
    assert isinstance(factory, LazyFactory) and factory.resolve() is DockerRuntime
    (info,) = [info for info in describe_plugins(loaded) if "docker" in info.runtimes]
    assert info.distribution == "tinklet-docker"
    assert "tinklet_execute_action" in info.hooks


def test_an_opened_runtime_runs_actions_through_the_plugin_manager(agent_id: str, docker_api: Any) -> None:
    loaded = load_plugins()
    spec = find_runtime(loaded.manager, "docker")
    runtime = open_runtime(loaded.manager, spec, RuntimeSettings(agent_id=agent_id))
    try:
        run = make_run(make_action(agent_id, ["echo", "via pluggy"]))
        outcome = loaded.manager.hook.tinklet_execute_action(context=run.context)
        assert outcome.state is State.SUCCESS
        assert run.lines == ["via pluggy"]
    finally:
        runtime.close()
    assert tinklet_containers(docker_api, agent_id) == []


def test_an_unreachable_daemon_is_one_clear_line() -> None:
    with pytest.raises(RuntimeUnavailable) as raised:
        DockerRuntime(RuntimeSettings(options={"docker_host": "unix:///nonexistent.sock"}))
    message = str(raised.value)
    assert message == "docker daemon at unix:///nonexistent.sock is not reachable: No such file or directory"


def test_a_malformed_daemon_url_is_unavailable_too() -> None:
    with pytest.raises(RuntimeUnavailable, match=r"^docker daemon at tcp//nowhere is not reachable: "):
        DockerRuntime(RuntimeSettings(options={"docker_host": "tcp//nowhere"}))


def test_opening_removes_what_a_crashed_run_left_for_this_agent_only(
    docker_api: Any, agent_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    crashed_agent = f"{agent_id}-crashed"
    other_agent = f"{agent_id}-other"

    def leftover(agent: str) -> str:
        """A stopped container labelled as an action of ``agent``, as a crash would leave it."""
        labels = make_action(agent, ["sleep", "60"]).labels()
        return str(docker_api.create_container(IMAGE, command=["sleep", "60"], labels=labels)["Id"])

    mine, theirs = leftover(crashed_agent), leftover(other_agent)
    try:
        with caplog.at_level("INFO", logger="tinklet.docker"):
            runtime = DockerRuntime(RuntimeSettings(agent_id=crashed_agent))
        runtime.close()
        assert tinklet_containers(docker_api, crashed_agent) == []
        assert len(tinklet_containers(docker_api, other_agent)) == 1
        assert "removed container" in caplog.text
    finally:
        for container in (mine, theirs):
            with contextlib.suppress(docker.errors.NotFound):
                docker_api.remove_container(container, force=True)


def test_the_runtime_reaches_the_daemon_named_by_the_docker_host_option(
    tmp_path: Path, agent_id: str
) -> None:
    proxy = SocketProxy(tmp_path / "docker.sock")
    runtime = DockerRuntime(RuntimeSettings(agent_id=agent_id, options={"docker_host": proxy.url}))
    try:
        run = make_run(make_action(agent_id, ["echo", "through the proxy"]))
        assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
        assert run.lines == ["through the proxy"]
    finally:
        runtime.close()
        proxy.stop()
