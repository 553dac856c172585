"""The core's registry-credentials hook: ``--registry`` entries first, then a docker config.json."""

from __future__ import annotations

import base64
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, RegistryCredentials, State
from tinklet_core.plugins import new_plugin_manager
from tinklet_core.registry_auth import ConfiguredRegistryCredentials, normalise_registry, read_docker_config
from tinklet_core.runtime import ActionContext, RuntimeSettings
from tinklet_core.transports.workflow_file import WorkflowFileTransport
from tinklet_core.worker import Worker, WorkerOptions
from tinklet_core.workflow import parse_workflow

SECRET = "s3cr3t:with:colons"


def auth_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def write_config(path: Path, auths: dict[str, Any], **extra: Any) -> Path:
    path.write_text(json.dumps({"auths": auths, **extra}))
    return path


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("http://Registry.Example:5000/v2/", "registry.example:5000"),
        ("127.0.0.1:5000/", "127.0.0.1:5000"),
        ("  quay.io  ", "quay.io"),
        ("ghcr.io/some/org", "ghcr.io"),
    ],
)
def test_registry_names_are_normalised(name: str, normalised: str) -> None:
    assert normalise_registry(name) == normalised


def test_reads_base64_auth_and_username_password_logins(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.json",
        {
            "https://index.docker.io/v1/": {"auth": auth_token("hub-user", SECRET)},
            "127.0.0.1:5000": {"username": "local-user", "password": "local-pass"},
        },
    )
    assert read_docker_config(config) == [
        RegistryCredentials("docker.io", "hub-user", SECRET),  # the password keeps its colons
        RegistryCredentials("127.0.0.1:5000", "local-user", "local-pass"),
    ]


def test_base64_auth_wins_over_username_and_password(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.json",
        {"r.example": {"auth": auth_token("from-auth", "p1"), "username": "plain", "password": "p2"}},
    )
    assert read_docker_config(config) == [RegistryCredentials("r.example", "from-auth", "p1")]


def test_entries_without_a_usable_login_are_skipped(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.json",
        {
            "helper.example": {},  # a credential helper's placeholder
            "token.example": {"identitytoken": "opaque"},
            "nopass.example": {"username": "u"},
            "broken.example": "not a mapping",
            "ok.example": {"username": "u", "password": ""},  # an empty password is still a login
        },
        credsStore="desktop",
    )
    assert read_docker_config(config) == [RegistryCredentials("ok.example", "u", "")]


def test_a_missing_file_gives_no_logins_and_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tinklet.registry"):
        assert read_docker_config(tmp_path / "absent.json") == []
    assert caplog.records == []


@pytest.mark.parametrize(
    "content",
    ['{"auths": {"r.example": {"password": "' + SECRET + '"', "[1, 2]", '{"auths": null}', ""],
    ids=["truncated", "a-list", "null-auths", "empty"],
)
def test_a_broken_file_gives_no_logins_and_never_echoes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(content)
    with caplog.at_level(logging.WARNING, logger="tinklet.registry"):
        assert read_docker_config(config) == []
    assert SECRET not in caplog.text


def test_an_unreadable_path_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tinklet.registry"):
        assert read_docker_config(tmp_path) == []  # a directory, not a file
    assert str(tmp_path) in caplog.text


@pytest.mark.parametrize(
    "auth", ["%%%not-base64%%%", base64.b64encode(b"\xff\xfe:" + SECRET.encode()).decode()]
)
def test_an_unreadable_auth_skips_that_login_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, auth: str
) -> None:
    config = write_config(
        tmp_path / "config.json",
        {"bad.example": {"auth": auth}, "good.example": {"auth": auth_token("u", "p")}},
    )
    with caplog.at_level(logging.WARNING, logger="tinklet.registry"):
        assert read_docker_config(config) == [RegistryCredentials("good.example", "u", "p")]
    assert "bad.example" in caplog.text
    assert auth not in caplog.text and SECRET not in caplog.text


def test_registry_entries_come_before_the_docker_config(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.json",
        {
            "127.0.0.1:5000": {"auth": auth_token("file-user", "file-pass")},
            "other.example": {"auth": auth_token("o", "p")},
        },
    )
    flag = RegistryCredentials("https://127.0.0.1:5000/v2/", "flag-user", "flag-pass")
    hook = ConfiguredRegistryCredentials([flag], config)
    assert hook.tinklet_registry_credentials("127.0.0.1:5000") == flag
    assert hook.tinklet_registry_credentials("other.example") == RegistryCredentials(
        "other.example", "o", "p"
    )
    assert hook.tinklet_registry_credentials("unknown.example") is None


def test_docker_hub_aliases_find_each_other(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.json", {"https://index.docker.io/v1/": {"auth": auth_token("u", "p")}}
    )
    hook = ConfiguredRegistryCredentials([], config)
    for name in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert hook.tinklet_registry_credentials(name) == RegistryCredentials("docker.io", "u", "p")
    flag_only = ConfiguredRegistryCredentials([RegistryCredentials("index.docker.io", "f", "q")], None)
    assert flag_only.tinklet_registry_credentials("docker.io") == RegistryCredentials(
        "index.docker.io", "f", "q"
    )


def test_the_first_matching_registry_entry_wins() -> None:
    first = RegistryCredentials("r.example", "first", "1")
    hook = ConfiguredRegistryCredentials([first, RegistryCredentials("R.example/", "second", "2")], None)
    assert hook.tinklet_registry_credentials("r.example") == first


def test_the_docker_config_is_read_at_each_pull(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    hook = ConfiguredRegistryCredentials([], config)
    assert hook.tinklet_registry_credentials("r.example") is None  # not there yet
    write_config(config, {"r.example": {"auth": auth_token("u", "old")}})
    assert hook.tinklet_registry_credentials("r.example") == RegistryCredentials("r.example", "u", "old")
    write_config(config, {"r.example": {"auth": auth_token("u", "new")}})
    assert hook.tinklet_registry_credentials("r.example") == RegistryCredentials("r.example", "u", "new")


def test_without_a_docker_config_only_the_entries_count() -> None:
    assert ConfiguredRegistryCredentials([], None).tinklet_registry_credentials("r.example") is None


def test_credentials_never_show_their_password() -> None:
    credentials = RegistryCredentials("r.example", "u", SECRET)
    hook = ConfiguredRegistryCredentials([credentials], None)
    assert SECRET not in repr(credentials) and SECRET not in str(credentials)
    assert SECRET not in repr(hook.tinklet_registry_credentials("r.example"))


class VaultPlugin:
    """A third-party credentials plugin: knows one registry, has no opinion on the others."""

    @hookimpl
    def tinklet_registry_credentials(self, registry: str, image: str) -> RegistryCredentials | None:
        if registry == "vault.example":
            return RegistryCredentials(registry, "vault", f"for {image}")
        return None


def test_a_plugin_is_asked_before_the_core_and_none_falls_through(tmp_path: Path) -> None:
    manager = new_plugin_manager()
    core = [RegistryCredentials("vault.example", "core", "c"), RegistryCredentials("r.example", "core", "r")]
    manager.register(ConfiguredRegistryCredentials(core, None), name="core-registry")
    manager.register(VaultPlugin(), name="vault")  # registered after the core, as plugins are
    ask = manager.hook.tinklet_registry_credentials
    assert ask(registry="vault.example", image="vault.example/a:1") == RegistryCredentials(
        "vault.example", "vault", "for vault.example/a:1"
    )
    assert ask(registry="r.example", image="r.example/b:1") == core[1]
    assert ask(registry="nobody.example", image="nobody.example/c:1") is None


class RecordingRuntime:
    """A runtime that runs nothing and records the credentials its context finds for the image."""

    def __init__(self) -> None:
        self.found: dict[str, RegistryCredentials | None] = {}

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        self.found[context.action.image] = context.registry_credentials(context.action.image)
        return Outcome(State.SUCCESS)


def test_the_worker_hands_the_runtime_credentials_for_the_images_registry(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.json", {"https://index.docker.io/v1/": {"auth": auth_token("hub", "h")}}
    )
    manager = new_plugin_manager()
    flags = [RegistryCredentials("127.0.0.1:5000", "local", "l"), RegistryCredentials("quay.io", "q", "q")]
    manager.register(ConfiguredRegistryCredentials(flags, config), name="core-registry")
    runtime = RecordingRuntime()
    manager.register(runtime, name="runtime:recording")
    images = [
        "127.0.0.1:5000/tinklet/busybox:latest",
        "quay.io/org/tool:1",
        "busybox",
        "library/alpine:3",
        "other.example/x",
    ]
    data = {
        "name": "wf",
        "tasks": [
            {"name": "t", "actions": [{"name": f"a{i}", "image": image} for i, image in enumerate(images)]}
        ],
    }
    transport = WorkflowFileTransport(parse_workflow(data))
    Worker(
        transport,
        manager,
        RuntimeSettings(),
        threading.Event(),
        WorkerOptions(min_backoff=0.01, max_backoff=0.05),
    ).run()
    assert runtime.found == {
        images[0]: flags[0],
        images[1]: flags[1],
        "busybox": RegistryCredentials("docker.io", "hub", "h"),
        "library/alpine:3": RegistryCredentials("docker.io", "hub", "h"),
        "other.example/x": None,
    }
