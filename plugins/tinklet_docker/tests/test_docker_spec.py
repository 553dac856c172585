"""How actions become container arguments, and the small helpers around docker's errors."""

from __future__ import annotations

import threading

import pytest
from tinklet_docker.spec import container_spec

from tinklet_core.model import Action, Volume
from tinklet_core.runtime import Privilege
from tinklet_core.runtime_helpers import Background, innermost_reason, one_line, without_secret

ACTION = Action(
    workflow_id="wf",
    task_id="task",
    action_id="act",
    agent_id="agent",
    name="disk",
    image="quay.io/tinkerbell/image2disk:v1",
    command=("sh", "-c", "echo hi"),
    env=(("DEST", "/dev/sda"), ("ARGS", "a=b c=d")),
    volumes=(
        Volume("/dev", "/dev"),
        Volume("/etc/hosts", "/hosts", read_only=True),
        Volume("cache", "/cache"),
    ),
    pid_namespace="host",
    network_namespace="host",
)


def test_an_action_becomes_the_container_docker_creates() -> None:
    spec = container_spec(ACTION, Privilege.PRIVILEGED, "abc123")
    assert spec.image == ACTION.image
    assert spec.command == ("sh", "-c", "echo hi")
    assert spec.environment == ("DEST=/dev/sda", "ARGS=a=b c=d")
    assert spec.binds == ("/dev:/dev:rw", "/etc/hosts:/hosts:ro", "cache:/cache:rw")
    assert spec.labels == ACTION.labels()
    assert (spec.pid_mode, spec.network_mode) == ("host", "host")
    assert spec.name.startswith("tinklet-") and spec.name.endswith("-abc123")


def test_names_are_stable_per_action_and_differ_between_actions() -> None:
    other = Action("wf", "task", "other", "agent", "x", "img")
    name = container_spec(ACTION, Privilege.NONE, "s").name
    assert name == container_spec(ACTION, Privilege.NONE, "s").name
    assert name != container_spec(other, Privilege.NONE, "s").name


@pytest.mark.parametrize(
    ("privilege", "privileged", "cap_add"),
    [(Privilege.PRIVILEGED, True, ()), (Privilege.ALL_CAPS, False, ("ALL",)), (Privilege.NONE, False, ())],
)
def test_privilege_setting(privilege: Privilege, privileged: bool, cap_add: tuple[str, ...]) -> None:
    spec = container_spec(ACTION, privilege, "s")
    assert (spec.privileged, spec.cap_add) == (privileged, cap_add)


def test_an_action_without_command_or_namespaces_keeps_dockers_defaults() -> None:
    spec = container_spec(Action("wf", "t", "a", "agent", "n", "img"), Privilege.NONE, "s")
    assert (spec.command, spec.pid_mode, spec.network_mode, spec.binds) == ((), "", "", ())


def test_connection_errors_are_reduced_to_the_operating_systems_words() -> None:
    inner = FileNotFoundError(2, "No such file or directory")
    wrapped = ConnectionError(ValueError("Connection aborted.", inner))
    try:
        raise RuntimeError("Error while fetching server API version: long text") from wrapped
    except RuntimeError as exc:
        assert innermost_reason(exc) == "No such file or directory"
    assert innermost_reason(ValueError("plain\nwords")) == "plain words"


def test_reasons_are_one_bounded_line_and_never_show_a_secret() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 5000)) <= 400
    assert without_secret("login hunter2 failed", "hunter2") == "login *** failed"
    assert without_secret("text", None) == "text"


def test_background_hands_back_the_value_or_the_error() -> None:
    ok = Background(lambda: 42, name="ok")
    assert ok.join(5) and ok.result() == 42

    def fail() -> int:
        raise KeyError("boom")

    failed = Background(fail, name="fail")
    assert failed.join(5)
    with pytest.raises(KeyError):
        failed.result()


def test_background_result_before_it_finished_is_an_error() -> None:
    release = threading.Event()
    pending = Background(release.wait, name="pending")
    with pytest.raises(RuntimeError):
        pending.result()
    release.set()
    assert pending.join(5)


def test_pull_errors_are_read_from_either_field_of_a_progress_event() -> None:
    from tinklet_docker.engine import pull_error

    assert pull_error({"errorDetail": {"message": "unknown blob"}, "error": "unknown blob"}) == "unknown blob"
    assert pull_error({"error": "denied"}) == "denied"
    assert pull_error({"status": "Downloading", "id": "abc"}) is None
    assert pull_error("not an event") is None
