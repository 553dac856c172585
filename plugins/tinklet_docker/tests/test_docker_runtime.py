"""The docker runtime running real containers on the real dockerd."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker_support import IMAGE, make_action, make_run, run_in_thread
from tinklet_docker import DockerRuntime
from tinklet_docker.engine import tinklet_containers

from tinklet_core.containers.capabilities import bounding_set, missing_capabilities
from tinklet_core.containers.spec import container_spec
from tinklet_core.errors import ActionInterrupted
from tinklet_core.model import State, Volume
from tinklet_core.runtime import Privilege


def test_output_lines_arrive_in_order(runtime: DockerRuntime, agent_id: str) -> None:
    run = make_run(make_action(agent_id, ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done"]))
    outcome = runtime.tinklet_execute_action(run.context)
    assert outcome.state is State.SUCCESS
    assert run.lines == [f"line {i}" for i in range(1, 6)]


def test_stderr_is_part_of_the_output(runtime: DockerRuntime, agent_id: str) -> None:
    run = make_run(make_action(agent_id, ["sh", "-c", "echo to-stdout; echo to-stderr >&2"]))
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert sorted(run.lines) == ["to-stderr", "to-stdout"]


def test_a_long_output_arrives_complete_and_in_order(runtime: DockerRuntime, agent_id: str) -> None:
    run = make_run(make_action(agent_id, ["seq", "1", "200000"]))
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert run.lines == [str(i) for i in range(1, 200001)]


def test_an_action_silent_for_longer_than_a_client_read_timeout_still_reports(
    runtime: DockerRuntime, agent_id: str
) -> None:
    # docker-py's default read timeout is 60 s; the output stream and the wait must not use it.
    run = make_run(make_action(agent_id, ["sh", "-c", "sleep 65; echo awake"]))
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert run.lines == ["awake"]


def test_env_values_keep_spaces_and_equals_signs(runtime: DockerRuntime, agent_id: str) -> None:
    env = (("GREETING", "hello  wide world"), ("ARGS", "a=b c==d"), ("EMPTY", ""))
    run = make_run(make_action(agent_id, ["sh", "-c", 'echo "[$GREETING|$ARGS|$EMPTY]"'], env=env))
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert run.lines == ["[hello  wide world|a=b c==d|]"]


@pytest.fixture
def image_with_default_command(docker_api: Any, agent_id: str) -> Iterator[str]:
    """The test image with ``CMD ["echo", "from the image"]``, removed afterwards."""
    repository = f"tinklet-test/default-command-{agent_id}"
    base = docker_api.create_container(IMAGE, command=["true"])
    try:
        docker_api.commit(
            base["Id"], repository=repository, tag="latest", changes='CMD ["echo", "from the image"]'
        )
    finally:
        docker_api.remove_container(base["Id"], force=True)
    yield f"{repository}:latest"
    docker_api.remove_image(f"{repository}:latest", force=True)


def test_the_image_default_command_runs_when_the_action_has_none(
    runtime: DockerRuntime, agent_id: str, image_with_default_command: str
) -> None:
    run = make_run(make_action(agent_id, [], image=image_with_default_command))
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert run.lines == ["from the image"]


def test_a_read_only_bind_mount_can_be_read_not_written(
    runtime: DockerRuntime, agent_id: str, tmp_path: Path
) -> None:
    source = tmp_path / "config.txt"
    source.write_text("from the host\n")
    volumes = (Volume(str(source), "/mnt/config.txt", read_only=True),)
    read = make_run(make_action(agent_id, ["cat", "/mnt/config.txt"], volumes=volumes))
    assert runtime.tinklet_execute_action(read.context).state is State.SUCCESS
    assert read.lines == ["from the host"]

    write = make_run(make_action(agent_id, ["sh", "-c", "echo changed > /mnt/config.txt"], volumes=volumes))
    assert runtime.tinklet_execute_action(write.context).state is State.FAILED
    assert source.read_text() == "from the host\n"


def test_a_read_write_bind_mount_changes_the_host(
    runtime: DockerRuntime, agent_id: str, tmp_path: Path
) -> None:
    volumes = (Volume(str(tmp_path), "/out"),)
    run = make_run(make_action(agent_id, ["sh", "-c", "echo written > /out/result"], volumes=volumes))
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert (tmp_path / "result").read_text() == "written\n"


def test_a_named_volume_carries_data_from_one_action_to_the_next(
    runtime: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    volume = f"tinklet-test-{agent_id}"
    volumes = (Volume(volume, "/data"),)
    try:
        first = make_run(make_action(agent_id, ["sh", "-c", "echo kept > /data/file"], volumes=volumes))
        assert runtime.tinklet_execute_action(first.context).state is State.SUCCESS
        second = make_run(make_action(agent_id, ["cat", "/data/file"], volumes=volumes))
        assert runtime.tinklet_execute_action(second.context).state is State.SUCCESS
        assert second.lines == ["kept"]
    finally:
        docker_api.remove_volume(volume, force=True)


def test_a_non_zero_exit_fails_with_the_exit_code(runtime: DockerRuntime, agent_id: str) -> None:
    run = make_run(make_action(agent_id, ["sh", "-c", "echo about to fail; exit 3"]))
    outcome = runtime.tinklet_execute_action(run.context)
    assert (outcome.state, outcome.exit_code, outcome.reason) == (State.FAILED, 3, "exit code 3")
    assert run.lines == ["about to fail"]


def test_a_command_that_cannot_start_fails_with_dockers_words(runtime: DockerRuntime, agent_id: str) -> None:
    run = make_run(make_action(agent_id, ["no-such-program", "--flag"]))
    outcome = runtime.tinklet_execute_action(run.context)
    assert outcome.state is State.FAILED
    assert outcome.reason.startswith("container failed to start:")
    assert "no-such-program" in outcome.reason and "\n" not in outcome.reason


def test_the_deadline_kills_the_container_and_reports_timeout(
    runtime: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    run = make_run(make_action(agent_id, ["sleep", "30"], timeout=2), deadline_in=2)
    started = time.monotonic()
    outcome = runtime.tinklet_execute_action(run.context)
    assert time.monotonic() - started < 4
    assert (outcome.state, outcome.reason) == (State.TIMEOUT, "timed out after 2s")
    assert tinklet_containers(docker_api, agent_id) == []


def test_shutdown_stops_and_removes_a_running_action(
    runtime: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    run = make_run(make_action(agent_id, ["sh", "-c", "echo started; sleep 60"]))
    started = run.printed("started")
    thread, result = run_in_thread(runtime, run)
    assert started.wait(15), "the first line must arrive while the action still runs"
    run.context.cancelled.set()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(result[0], ActionInterrupted)
    assert tinklet_containers(docker_api, agent_id) == []


def test_the_running_container_carries_the_action_labels(
    runtime: DockerRuntime, agent_id: str, docker_api: Any
) -> None:
    action = make_action(agent_id, ["sh", "-c", "echo up; sleep 60"])
    run = make_run(action)
    up = run.printed("up")
    thread, _result = run_in_thread(runtime, run)
    try:
        assert up.wait(15)
        found = docker_api.containers(filters={"label": f"tinklet.action={action.action_id}"})
        assert len(found) == 1
        labels = found[0]["Labels"]
        assert {key: labels[key] for key in action.labels()} == action.labels()
    finally:
        run.context.cancelled.set()
        thread.join(10)


def proc_pids(runtime: DockerRuntime, agent_id: str, **fields: Any) -> list[str]:
    """The process ids an action sees in /proc (a process that ends while ``ls`` lists the host's
    /proc makes ``ls`` exit 1, so its status is not the point here)."""
    run = make_run(make_action(agent_id, ["sh", "-c", "ls /proc 2>/dev/null; true"], **fields))
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    return [line for line in run.lines if line.isdigit()]


def test_the_host_pid_namespace_shows_host_processes(runtime: DockerRuntime, agent_id: str) -> None:
    own = proc_pids(runtime, agent_id)
    host = proc_pids(runtime, agent_id, pid_namespace="host")
    assert len(own) == 2 and "1" in own  # the action's own shell (pid 1) and its ls, nothing else
    assert len(host) > 5


def test_the_host_network_namespace_shows_host_interfaces(runtime: DockerRuntime, agent_id: str) -> None:
    def interfaces(**fields: Any) -> set[str]:
        """The network interfaces an action sees."""
        run = make_run(make_action(agent_id, ["ls", "/sys/class/net"], **fields))
        assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
        return set(run.lines)

    assert "docker0" in interfaces(network_namespace="host")
    assert "docker0" not in interfaces()


def devices(runtime: DockerRuntime, agent_id: str, privilege: Privilege) -> set[str]:
    """The device names an action with ``privilege`` sees in /dev."""
    run = make_run(make_action(agent_id, ["ls", "/dev"]), privilege=privilege)
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    return set(run.lines)


def effective_caps(runtime: DockerRuntime, agent_id: str, privilege: Privilege) -> int:
    """The effective capability mask of an action with ``privilege``."""
    run = make_run(make_action(agent_id, ["grep", "CapEff", "/proc/self/status"]), privilege=privilege)
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    return int(run.lines[0].split()[1], 16)


def test_privileged_actions_see_host_devices(runtime: DockerRuntime, agent_id: str) -> None:
    assert "kmsg" in devices(runtime, agent_id, Privilege.PRIVILEGED)
    assert "kmsg" not in devices(runtime, agent_id, Privilege.NONE)


def test_all_caps_grants_more_capabilities_than_none_but_no_host_devices(
    runtime: DockerRuntime, agent_id: str
) -> None:
    all_caps = effective_caps(runtime, agent_id, Privilege.ALL_CAPS)
    default = effective_caps(runtime, agent_id, Privilege.NONE)
    assert all_caps & default == default and all_caps != default
    assert "kmsg" not in devices(runtime, agent_id, Privilege.ALL_CAPS)


@pytest.mark.parametrize("privilege", list(Privilege))
def test_every_privilege_setting_runs_an_action(
    runtime: DockerRuntime, agent_id: str, privilege: Privilege
) -> None:
    run = make_run(make_action(agent_id, ["id", "-u"]), privilege=privilege)
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert run.lines == ["0"]


def test_chatty_output_comes_in_order_in_a_few_large_batches(runtime: DockerRuntime, agent_id: str) -> None:
    count = 200_000
    run = make_run(make_action(agent_id, ["seq", "1", str(count)]))
    batches: list[list[str]] = []
    run.context.output_lines = batches.append
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert [line for batch in batches for line in batch] == [str(n) for n in range(1, count + 1)]
    assert len(batches) < count / 100, "a batch per chunk the engine sent, not a call per line"


def plain_runc_caps(runtime: DockerRuntime, agent_id: str, cap_add: list[str], cap_drop: list[str]) -> int:
    """CapEff of a container started by plain runc (not the test wrapper that drops what the
    host lacks) with these capability changes; raises docker's APIError if it cannot start."""
    api = runtime.engine.api
    action = make_action(agent_id, ["grep", "CapEff", "/proc/self/status"])
    host_config = api.create_host_config(cap_add=cap_add, cap_drop=cap_drop or None, runtime="runc")
    created = api.create_container(
        IMAGE, command=list(action.command), labels=action.labels(), host_config=host_config
    )
    try:
        api.start(created)
        assert api.wait(created)["StatusCode"] == 0
        return int(api.logs(created).split()[1], 16)
    finally:
        api.remove_container(created, force=True)


def test_all_caps_grants_what_the_hosts_bounding_set_holds_even_under_plain_runc(
    runtime: DockerRuntime, agent_id: str
) -> None:
    spec = container_spec(make_action(agent_id, ["true"]), IMAGE, Privilege.ALL_CAPS, "x")
    bounding = bounding_set(Path("/proc/self/status").read_text())
    assert bounding is not None
    granted = plain_runc_caps(runtime, agent_id, list(spec.cap_add), list(spec.cap_drop))
    assert granted & ~bounding == 0, "nothing outside the bounding set"
    assert granted >> 21 & 1, "CAP_SYS_ADMIN, which docker's defaults lack"
    if missing_capabilities():  # as on this machine: plain ALL is what failed every action
        with pytest.raises(docker.errors.APIError, match="caps"):
            plain_runc_caps(runtime, agent_id, ["ALL"], [])
