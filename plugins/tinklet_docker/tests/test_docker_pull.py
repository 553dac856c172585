"""Image pulls: the pull policy, registry logins and registry errors, against real registries."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker_support import IMAGE, delete_layers_with, make_action, make_run, run_in_thread
from tinklet_docker import DockerRuntime

from tinklet_core.errors import ActionInterrupted
from tinklet_core.model import PullPhase, PullProgress, RegistryCredentials, State
from tinklet_core.runtime import PullPolicy
from tinklet_core.testing.registry import TestRegistry

UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: connection refused at once


@pytest.fixture
def local_copy(docker_api: Any) -> Iterator[str]:
    """The test image tagged as if it came from an unreachable registry (present locally)."""
    repository = f"{UNREACHABLE}/tinklet-test/busybox-{uuid.uuid4().hex[:8]}"
    docker_api.tag(IMAGE, repository, "latest")
    yield f"{repository}:latest"
    docker_api.remove_image(f"{repository}:latest")


@pytest.fixture
def pushed(registry: TestRegistry, docker_api: Any) -> Iterator[tuple[str, str]]:
    """An image only the registry has: the test image plus a ``/marker`` file with random text
    (a layer no other image shares), pushed with the login. Yields (reference, text)."""
    marker = uuid.uuid4().hex
    local = f"tinklet-test/unique-{marker[:8]}:v1"
    base = docker_api.create_container(IMAGE, command=["sh", "-c", f"echo {marker} > /marker"])
    try:
        docker_api.start(base["Id"])
        docker_api.wait(base["Id"])
        repository, _, tag = local.partition(":")
        docker_api.commit(base["Id"], repository=repository, tag=tag)
    finally:
        docker_api.remove_container(base["Id"], force=True)
    reference = registry.push(local, local)
    for name in (local, reference):  # so that running it needs a pull
        docker_api.remove_image(name)
    yield reference, marker
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_api.remove_image(reference, force=True)


def login(registry: TestRegistry, password: str | None = None) -> RegistryCredentials:
    """The registry's login, or its user with another ``password``."""
    return RegistryCredentials(registry.host, registry.username, password or registry.password)


def test_never_fails_for_an_absent_image(runtime: DockerRuntime, agent_id: str) -> None:
    image = f"tinklet-test/absent-{uuid.uuid4().hex[:8]}:latest"
    run = make_run(make_action(agent_id, ["true"], image=image), pull_policy=PullPolicy.NEVER)
    outcome = runtime.tinklet_execute_action(run.context)
    assert (outcome.state, outcome.reason) == (
        State.FAILED,
        f"image {image} not present and pull policy is never",
    )


def test_a_pull_from_an_unreachable_registry_fails_with_its_error(
    runtime: DockerRuntime, agent_id: str
) -> None:
    password = "do-not-show-" + uuid.uuid4().hex
    run = make_run(
        make_action(agent_id, ["true"], image=f"{UNREACHABLE}/tinklet-test/absent:latest"),
        credentials=RegistryCredentials(UNREACHABLE, "someone", password),
    )
    started = time.monotonic()
    outcome = runtime.tinklet_execute_action(run.context)
    assert time.monotonic() - started < 30
    assert outcome.state is State.FAILED
    assert outcome.reason.startswith("image pull failed:")
    assert "connection refused" in outcome.reason
    assert password not in outcome.reason


def test_missing_uses_a_present_image_and_always_pulls_it(
    runtime: DockerRuntime, agent_id: str, local_copy: str
) -> None:
    missing = make_run(make_action(agent_id, ["echo", "local"], image=local_copy))
    assert runtime.tinklet_execute_action(missing.context).state is State.SUCCESS
    assert missing.lines == ["local"]

    always = make_run(
        make_action(agent_id, ["echo", "local"], image=local_copy), pull_policy=PullPolicy.ALWAYS
    )
    outcome = runtime.tinklet_execute_action(always.context)
    assert outcome.state is State.FAILED and outcome.reason.startswith("image pull failed:")
    assert always.lines == []


def test_a_pull_with_the_right_login_runs_the_image(
    runtime: DockerRuntime, agent_id: str, registry: TestRegistry, pushed: tuple[str, str]
) -> None:
    image, marker = pushed
    run = make_run(make_action(agent_id, ["cat", "/marker"], image=image), credentials=login(registry))
    outcome = runtime.tinklet_execute_action(run.context)
    assert outcome.state is State.SUCCESS, outcome.reason
    assert run.lines == [marker]


def test_a_wrong_password_fails_with_the_registrys_words_and_never_the_password(
    runtime: DockerRuntime, agent_id: str, registry: TestRegistry, pushed: tuple[str, str]
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    run = make_run(make_action(agent_id, ["true"], image=pushed[0]), credentials=login(registry, wrong))
    outcome = runtime.tinklet_execute_action(run.context)
    assert outcome.state is State.FAILED
    where = f"{pushed[0]} from {registry.host}"
    assert outcome.reason == f"image pull failed: {where}: unauthorized: authentication required"
    assert wrong not in outcome.reason and registry.password not in outcome.reason


def test_an_error_in_the_middle_of_a_pull_fails_the_action(
    runtime: DockerRuntime, agent_id: str, registry: TestRegistry, pushed: tuple[str, str]
) -> None:
    # The manifest is served but the marker layer is gone: docker answers 200 and reports the
    # failure as an {"error": ...} line in the stream, which docker-py's high-level pull ignores.
    delete_layers_with(registry.root / "storage", "marker")
    run = make_run(make_action(agent_id, ["true"], image=pushed[0]), credentials=login(registry))
    outcome = runtime.tinklet_execute_action(run.context)
    reason = f"image pull failed: {pushed[0]} from {registry.host}: unknown blob"
    assert (outcome.state, outcome.reason) == (State.FAILED, reason)


def test_a_pull_is_reported_started_with_progress_then_finished(
    runtime: DockerRuntime, agent_id: str, registry: TestRegistry, pushed: tuple[str, str]
) -> None:
    records: list[PullProgress] = []
    run = make_run(make_action(agent_id, ["true"], image=pushed[0]), credentials=login(registry))
    context = dataclasses.replace(run.context, pull_progress=records.append)
    assert runtime.tinklet_execute_action(context).state is State.SUCCESS
    phases = [record.phase for record in records]
    assert phases[0] is PullPhase.STARTED and phases[-1] is PullPhase.FINISHED
    assert PullPhase.PROGRESS in phases and PullPhase.FAILED not in phases
    assert {record.image for record in records} == {pushed[0]}
    assert records[-1].at - records[0].at > 0  # observers time the pull from these two


def test_a_refused_pull_is_reported_started_then_failed(
    runtime: DockerRuntime, agent_id: str, registry: TestRegistry, pushed: tuple[str, str]
) -> None:
    records: list[PullProgress] = []
    wrong = login(registry, "wrong-" + uuid.uuid4().hex)
    run = make_run(make_action(agent_id, ["true"], image=pushed[0]), credentials=wrong)
    context = dataclasses.replace(run.context, pull_progress=records.append)
    assert runtime.tinklet_execute_action(context).state is State.FAILED
    assert [record.phase for record in records] == [PullPhase.STARTED, PullPhase.FAILED]


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """A registry address that accepts connections and never answers: a pull hangs there."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def test_the_deadline_covers_a_hanging_pull(
    runtime: DockerRuntime, agent_id: str, silent_registry: str
) -> None:
    action = make_action(agent_id, ["true"], image=f"{silent_registry}/tinklet-test/hang:latest", timeout=2)
    run = make_run(action, deadline_in=2)
    started = time.monotonic()
    outcome = runtime.tinklet_execute_action(run.context)
    assert time.monotonic() - started < 5
    assert outcome.state is State.TIMEOUT
    assert outcome.reason.startswith("timed out after 2s")


def test_shutdown_interrupts_a_hanging_pull(
    runtime: DockerRuntime, agent_id: str, silent_registry: str
) -> None:
    run = make_run(make_action(agent_id, ["true"], image=f"{silent_registry}/tinklet-test/hang:latest"))
    thread, result = run_in_thread(runtime, run)
    time.sleep(0.5)
    run.context.cancelled.set()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(result[0], ActionInterrupted)
