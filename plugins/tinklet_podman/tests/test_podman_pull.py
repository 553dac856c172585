"""Pulling from a real registry with TLS and a password: policy, credentials, failures.

The registry is Debian's ``docker-registry`` (distribution) on a loopback port, with a
certificate from a throw-away CA and an htpasswd file. Podman trusts the CA through
``/etc/containers/certs.d/127.0.0.1:PORT/ca.crt``, which the fixture writes and removes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from podman_support import execute, make_action, podman
from tinklet_podman.runtime import PodmanRuntime

from tinklet_core.model import RegistryCredentials, State
from tinklet_core.runtime import PullPolicy, RuntimeSettings
from tinklet_core.testing.certs import make_test_pki

USER = "tinklet"
PASSWORD = "s3cret-pass-word"


@dataclass(frozen=True)
class Registry:
    """A running test registry and an image pushed to it."""

    host: str
    image: str

    def credentials(self, password: str = PASSWORD) -> RegistryCredentials:
        """The test user's credentials, with ``password`` (right by default)."""
        return RegistryCredentials(self.host, USER, password)


def _free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, containers_conf: None) -> Iterator[Registry]:
    """A TLS registry with a password, trusted by Podman, holding the busybox image."""
    for tool in ("docker-registry", "htpasswd", "openssl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup installs it)")
    base = tmp_path_factory.mktemp("registry")
    pki = make_test_pki(base / "pki", name="podman registry test")
    htpasswd = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    )
    (base / "htpasswd").write_text(htpasswd.stdout)
    port = _free_port()
    host = f"127.0.0.1:{port}"
    config = base / "config.yml"
    config.write_text(
        f"""version: 0.1
log: {{level: error}}
storage: {{filesystem: {{rootdirectory: {base / "data"}}}}}
http:
  addr: {host}
  tls: {{certificate: {pki.server_cert}, key: {pki.server_key}}}
auth:
  htpasswd: {{realm: tinklet-test, path: {base / "htpasswd"}}}
"""
    )
    certs = Path("/etc/containers/certs.d") / host
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(pki.ca_cert, certs / "ca.crt")
    server = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    image = f"{host}/tinklet/pulled:1"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("the test registry did not start") from None
                time.sleep(0.1)
        podman("push", "-q", "--creds", f"{USER}:{PASSWORD}", "localhost/tinklet/busybox:latest", image)
        podman("rmi", "-f", image, check=False)
        yield Registry(host, image)
    finally:
        podman("rmi", "-f", image, check=False)
        server.terminate()
        server.wait(10)
        shutil.rmtree(certs, ignore_errors=True)


@pytest.fixture
def no_local_copy(registry: Registry) -> Iterator[None]:
    """The registry's image is not in Podman's store before or after the test."""
    podman("rmi", "-f", registry.image, check=False)
    yield
    podman("rmi", "-f", registry.image, check=False)


def test_a_wrong_password_fails_with_the_registrys_words(
    runtime: PodmanRuntime, registry: Registry, no_local_copy: None
) -> None:
    run = execute(
        runtime, make_action(["true"], image=registry.image), credentials=registry.credentials("wrong-pw")
    )
    assert run.outcome is not None and run.outcome.state is State.FAILED
    assert run.outcome.reason.startswith("image pull failed: ")
    assert "unauthorized" in run.outcome.reason
    assert "wrong-pw" not in run.outcome.reason and "\n" not in run.outcome.reason


def test_no_credentials_fails(runtime: PodmanRuntime, registry: Registry, no_local_copy: None) -> None:
    run = execute(runtime, make_action(["true"], image=registry.image))
    assert run.outcome is not None and run.outcome.state is State.FAILED
    assert "unauthorized" in run.outcome.reason


def test_credentials_pull_then_missing_policy_skips_the_pull(
    runtime: PodmanRuntime, registry: Registry, no_local_copy: None
) -> None:
    pulled = execute(
        runtime, make_action(["echo", "pulled"], image=registry.image), credentials=registry.credentials()
    )
    assert pulled.outcome is not None and pulled.outcome.state is State.SUCCESS, pulled.outcome
    assert pulled.lines == ["pulled"]
    # Present now: the default policy does not pull, so even a wrong password does not matter...
    again = execute(
        runtime, make_action(["echo", "cached"], image=registry.image), credentials=registry.credentials("x")
    )
    assert again.outcome is not None and again.outcome.state is State.SUCCESS
    # ...while "always" pulls, and the wrong password then fails it.
    always = RuntimeSettings(pull_policy=PullPolicy.ALWAYS)
    forced = execute(
        runtime,
        make_action(["true"], image=registry.image),
        settings=always,
        credentials=registry.credentials("x"),
    )
    assert forced.outcome is not None and forced.outcome.state is State.FAILED
    assert "unauthorized" in forced.outcome.reason
