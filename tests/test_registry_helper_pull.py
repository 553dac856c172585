"""A ``docker-credential-*`` helper on PATH supplies the login for the real htpasswd registry.

The worker's docker config names the helper (``credHelpers`` for the registry, or
``credsStore``); tinklet runs ``docker-credential-NAME get`` with the registry on stdin and pulls
with the login it answers, through Docker and Podman. The debug log names the helper as the
source and never shows the password. A broken docker config is a warning naming the file.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from test_registry_pull import (  # the real registry's fixtures and helpers
    absent,
    assert_pull_failed,
    assert_secret_kept,
    assert_succeeded,
    home,
    needs_podman,
    podman_absent,
    podman_trusts,
    pushed,
    registry,
    tinklet_run,
)

from tinklet_core.testing.registry import TestRegistry, registry_tools_missing

__all__ = ["absent", "home", "podman_absent", "podman_trusts", "pushed", "registry"]  # fixtures
pytestmark = pytest.mark.skipif(registry_tools_missing() is not None, reason=registry_tools_missing() or "")
HELPER = "tinklet-test-store"


def install_helper(directory: Path, registry: TestRegistry, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``docker-credential-tinklet-test-store`` on PATH, holding the registry's login; it records
    each server address it is asked about in ``asked.txt`` next to it."""
    directory.mkdir(exist_ok=True)
    answer = json.dumps(
        {"ServerURL": registry.host, "Username": registry.username, "Secret": registry.password}
    )
    program = directory / f"docker-credential-{HELPER}"
    program.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 3\n'
        "read -r server\n"
        f'echo "$server" >> "{directory}/asked.txt"\n'
        f'if [ "$server" = "{registry.host}" ]; then\n'
        f"  printf '%s\\n' '{answer}'\n"
        "else\n"
        "  echo 'credentials not found in native keychain'\n"
        "  exit 1\n"
        "fi\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory / "asked.txt"


def write_docker_config(home: Path, content: dict[str, object] | str) -> Path:
    config = home / ".docker" / "config.json"
    config.parent.mkdir(exist_ok=True)
    config.write_text(content if isinstance(content, str) else json.dumps(content))
    return config


def assert_helper_answered(run_text: str, host: str) -> None:
    assert (
        f"registry {host}: login for user tinklet from credential helper docker-credential-{HELPER}"
        in run_text
    )


@pytest.mark.parametrize("form", ["credHelpers", "credsStore"])
def test_docker_pulls_with_the_login_a_credential_helper_holds(
    registry: TestRegistry,
    absent: str,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
) -> None:
    asked = install_helper(tmp_path / "bin", registry, monkeypatch)
    config = {"credHelpers": {registry.host: HELPER}} if form == "credHelpers" else {"credsStore": HELPER}
    write_docker_config(home, config)
    run = tinklet_run(home, absent)
    assert_succeeded(run)
    assert_helper_answered(run.text, registry.host)
    assert registry.host in asked.read_text().split()
    assert_secret_kept(run, registry.password)


@needs_podman
def test_podman_pulls_with_the_login_a_credential_helper_holds(
    registry: TestRegistry,
    podman_absent: str,
    podman_trusts: None,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_helper(tmp_path / "bin", registry, monkeypatch)
    write_docker_config(home, {"credHelpers": {registry.host: HELPER}})
    run = tinklet_run(home, podman_absent, runtime="podman")
    assert_succeeded(run)
    assert_helper_answered(run.text, registry.host)
    assert_secret_kept(run, registry.password)


def test_a_missing_helper_is_a_warning_and_the_pull_goes_without_a_login(
    registry: TestRegistry, absent: str, home: Path
) -> None:
    config = write_docker_config(home, {"credHelpers": {registry.host: "tinklet-test-absent"}})
    run = tinklet_run(home, absent)
    assert_pull_failed(run)
    assert (
        f"docker config {config} (credHelpers) names credential helper "
        "docker-credential-tinklet-test-absent, which is not installed" in run.stderr
    )
    assert f"registry {registry.host}: no login found" in run.stderr


def test_a_broken_docker_config_is_a_warning_naming_the_file_for_tinklets_reader(
    registry: TestRegistry, absent: str, home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "broken" / "config.json"
    config.parent.mkdir()
    config.write_text('{"auths": {"' + registry.host + '": {"auth": "ZXJpYw"}}}')  # bad padding
    run = tinklet_run(home, absent, "--docker-config", str(config))
    assert_pull_failed(run)
    assert f"ignoring unreadable login for {registry.host} in {config}" in run.stderr
    assert "Incorrect padding" not in run.text
    config.write_text('{"auths": {"' + registry.host + '": {"auth": "' + registry.password + '"')  # cut short
    run = tinklet_run(home, absent, "--docker-config", str(config))
    assert_pull_failed(run)
    assert f"ignoring docker config {config}: not valid JSON" in run.stderr
    assert_secret_kept(run, registry.password)


def _login(registry: TestRegistry) -> str:
    return json.dumps({"name": registry.host, "user": registry.username, "password": registry.password})


def test_a_broken_home_docker_config_does_not_stop_the_docker_runtime(
    registry: TestRegistry, absent: str, home: Path
) -> None:
    token = base64.b64encode(b"u:p").decode().rstrip("=")[:-1]
    write_docker_config(home, {"auths": {"r.example": {"auth": token}}})
    run = tinklet_run(home, absent, "--registry", _login(registry))
    assert_succeeded(run)
    assert "unexpected" not in run.text
