"""No option's value is echoed unless it is a short path: a private key pasted in place of a
file name (``--config "$(cat client.key)"``) never reaches stdout, stderr or a warning, and
neither does a password in a URL (``tcp://user:PASSWORD@…``, ``--https-proxy``). Each entry
point is tried with a real PEM key as the value; the message still says what is wrong.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client as kube_client
from tinklet_docker.engine import DockerEngine
from tinklet_kube.api import _load_files
from tinklet_podman.connect import connect

from tinklet_core.config import load_settings
from tinklet_core.errors import ConfigError, RuntimeUnavailable, WorkflowFileError
from tinklet_core.registry_auth import docker_config_login
from tinklet_core.workflow import load_workflow

PASSWORD = "Pr0xy-S3cret-pw"


@pytest.fixture(scope="module")
def pem_key() -> str:
    made = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout


def assert_key_not_in(text: str, pem: str) -> None:
    """No line of the key's body (nor a 16-character piece of one) is in ``text``."""
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    assert "PRIVATE KEY" not in text, text[:500]
    for line in body:
        for start in range(0, len(line) - 16, 8):
            assert line[start : start + 16] not in text, text[:500]


def tinklet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinklet_core", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_a_key_given_as_the_config_file_is_described_not_echoed(pem_key: str) -> None:
    run = tinklet("--config", pem_key, "--tink", "127.0.0.1:1", "--identifier", "x", "docker")
    assert run.returncode == 2, run.stderr
    assert re.search(r"cannot read config file the value given \(1,\d{3} characters, not shown\)", run.stderr)
    assert_key_not_in(run.stdout + run.stderr, pem_key)


def test_a_key_in_tinklet_config_is_described_not_echoed(pem_key: str) -> None:
    run = tinklet("--tink", "127.0.0.1:1", "--identifier", "x", "docker", env={"TINKLET_CONFIG": pem_key})
    assert run.returncode == 2, run.stderr
    assert "cannot read config file the value given" in run.stderr
    assert_key_not_in(run.stdout + run.stderr, pem_key)


def test_a_key_in_a_tinklet_variable_is_described_not_echoed(pem_key: str) -> None:
    run = tinklet("--tink", "127.0.0.1:1", "--identifier", "x", "docker", env={"TINKLET_PULL": pem_key})
    assert run.returncode == 2, run.stderr
    assert "TINKLET_PULL: the value given" in run.stderr
    assert_key_not_in(run.stdout + run.stderr, pem_key)


def test_a_config_file_path_is_still_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"cannot read config file {tmp_path}/absent.yaml: No such file"):
        load_settings({"config": str(tmp_path / "absent.yaml")}, environ={})


def test_an_unknown_setting_that_is_a_key_is_not_echoed(tmp_path: Path, pem_key: str) -> None:
    config = tmp_path / "tinklet.yaml"
    config.write_text(f"? {json.dumps(pem_key)}\n: 1\n")
    settings = load_settings({"config": str(config)}, environ={})
    assert settings.warnings == (
        f"{config}: unknown setting the value given ({len(pem_key):,} characters, not shown) ignored",
    )
    assert_key_not_in(" ".join(settings.warnings), pem_key)


def test_a_key_as_the_docker_host_is_described_not_echoed(pem_key: str) -> None:
    with pytest.raises(RuntimeUnavailable) as caught:
        DockerEngine(pem_key)
    assert str(caught.value).startswith("docker daemon at the value given (")
    assert_key_not_in(str(caught.value), pem_key)


def test_a_password_in_the_docker_host_url_is_masked() -> None:
    with pytest.raises(RuntimeUnavailable) as caught:
        DockerEngine(f"tcp://alice:{PASSWORD}@127.0.0.1")  # no port: docker-py quotes the URL
    assert "docker daemon at tcp://alice:***@127.0.0.1 is not reachable" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_a_key_as_the_podman_socket_is_described_not_echoed(pem_key: str) -> None:
    with pytest.raises(RuntimeUnavailable) as caught:
        connect({"podman_socket": pem_key})
    assert "Podman socket the value given (" in str(caught.value)
    assert_key_not_in(str(caught.value), pem_key)


def test_a_key_as_the_kubeconfig_is_described_not_echoed(pem_key: str) -> None:
    with pytest.raises(RuntimeUnavailable) as caught:
        _load_files(pem_key, kube_client.Configuration())
    assert (
        str(caught.value)
        == f"kubeconfig the value given ({len(pem_key):,} characters, not shown) does not exist"
    )


def test_a_docker_config_named_by_key_text_is_described_not_echoed(tmp_path: Path, pem_key: str) -> None:
    first_lines = "\n".join(pem_key.splitlines()[:2]).replace("/", "_")  # a file name may hold a newline
    config = tmp_path / first_lines
    config.write_text("[]")
    problems: list[str] = []
    assert docker_config_login(config, "r.example", problems=problems) is None
    assert problems == [
        f"ignoring docker config the value given ({len(str(config)):,} characters, not shown): "
        "not a JSON object"
    ]


def test_a_key_as_the_workflow_file_and_in_its_environment_is_not_echoed(
    tmp_path: Path, pem_key: str
) -> None:
    with pytest.raises(WorkflowFileError) as unreadable:
        load_workflow(Path(pem_key))
    assert "cannot read workflow file the value given" in str(unreadable.value)
    workflow = tmp_path / "wf.yaml"
    one_line_key = pem_key.replace("\n", " ").replace("=", "")  # no KEY=VALUE
    workflow.write_text(
        "tasks:\n  - name: t\n    actions:\n      - name: a\n        image: i\n"
        f"        environment: [{one_line_key!r}]\n"
    )
    with pytest.raises(WorkflowFileError) as bad_env:
        load_workflow(workflow)
    assert "the value given" in str(bad_env.value) and "is not KEY=VALUE" in str(bad_env.value)
    assert_key_not_in(str(unreadable.value) + str(bad_env.value), pem_key)


@pytest.mark.parametrize("name", ["http-proxy", "https-proxy"])
def test_a_proxy_password_on_the_command_line_is_warned_about_without_echoing_it(name: str) -> None:
    key = name.replace("-", "_")
    settings = load_settings({key: f"http://user:{PASSWORD}@proxy.example:3128"}, environ={})
    variable = key.upper()
    assert settings.warnings == (
        f"--{name} on the command line holds a password visible to every user of this machine (ps); "
        f"prefer {variable} in the environment or the config file",
    )
    assert not load_settings({key: "http://proxy.example:3128"}, environ={}).warnings
    quiet = load_settings({}, environ={variable: f"http://user:{PASSWORD}@proxy.example:3128"})
    assert not quiet.warnings


def _shared_login_file(tmp_path: Path) -> Path:
    shared = tmp_path / "shared-login.json"
    shared.write_text('{"name": "s.example", "user": "u", "password": "' + PASSWORD + '"}')
    shared.chmod(0o644)
    return shared


def test_a_world_readable_login_file_named_in_tinklet_registry_is_warned_about(tmp_path: Path) -> None:
    shared = _shared_login_file(tmp_path)
    settings = load_settings({}, environ={"TINKLET_REGISTRY": f"@{shared}"})
    assert settings.warnings == (f"registry login file {shared} is readable by other users; chmod 600 it",)
    assert [login.registry for login in settings.registries] == ["s.example"]
    shared.chmod(0o600)
    assert load_settings({}, environ={"TINKLET_REGISTRY": f"@{shared}"}).warnings == ()


def test_a_world_readable_login_file_named_in_the_config_file_is_warned_about(tmp_path: Path) -> None:
    shared = _shared_login_file(tmp_path)
    config = tmp_path / "tinklet.yaml"
    config.write_text(f"registry: ['@{shared}']\n")
    settings = load_settings({"config": str(config)}, environ={})
    assert settings.warnings == (f"registry login file {shared} is readable by other users; chmod 600 it",)
    assert all(PASSWORD not in warning for warning in settings.warnings)
