"""Runtimes pull with the credentials the registry hook finds, from a real TLS registry with a login.

Each test runs ``python -m tinklet_core run WORKFLOW.yaml`` as a user would, against
:class:`~tinklet_core.testing.registry.TestRegistry`, with an image that only the registry has.
Credentials come through the core's hook from ``--registry`` or a docker ``config.json``. The
worker runs with ``HOME`` (and Podman's ``REGISTRY_AUTH_FILE``) pointing at an empty directory,
so no login in the real ``~/.docker/config.json`` can make a pull succeed, and every run checks
that the password never shows in its output or log (at debug level).

Docker runs the whole set; Podman the login tests and certificate verification (dockerd does
not verify certificates of loopback registries, Podman does).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tinklet_core.testing.registry import TestRegistry, registry_tools_missing

LOCAL_IMAGE = "tinklet/busybox:latest"
GREETING = "hello from the test registry"
RUN_TIMEOUT = 120
PODMAN_CONF = "/etc/containers/tinklet-test.conf"  # no default ulimits, runc: see DESIGN.md


def _docker_ready() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    found = subprocess.run(["docker", "image", "inspect", LOCAL_IMAGE], capture_output=True, check=False)
    if found.returncode != 0:
        return f"dockerd is not running or has no {LOCAL_IMAGE} (scripts/setup makes it)"
    return None


def _podman_ready() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/setup installs it)"
    if importlib.util.find_spec("tinklet_podman") is None:
        return "the tinklet-podman plugin is not installed"
    if not Path(PODMAN_CONF).is_file():
        return f"{PODMAN_CONF} is missing (scripts/setup writes it)"
    return None


_skip_reason = registry_tools_missing() or _docker_ready()
pytestmark = pytest.mark.skipif(_skip_reason is not None, reason=_skip_reason or "")
_podman_skip_reason = _podman_ready()
needs_podman = pytest.mark.skipif(_podman_skip_reason is not None, reason=_podman_skip_reason or "")


@pytest.fixture(scope="module")
def registry() -> Iterator[TestRegistry]:
    """One registry for the module: starting one costs ~0.1 s, pushing ~0.3 s."""
    with TestRegistry() as running:
        yield running


@pytest.fixture(scope="module")
def pushed(registry: TestRegistry) -> str:
    """The test image, pushed under a unique name (the registry removes the local tag on exit)."""
    return registry.push(LOCAL_IMAGE, f"tinklet-test/registry-pull-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def absent(pushed: str) -> Iterator[str]:
    """``pushed``, with no local copy: running it needs a pull. Removed again afterwards."""
    _untag(pushed)
    yield pushed
    _untag(pushed)


@pytest.fixture
def present(pushed: str) -> Iterator[str]:
    """``pushed``, present locally."""
    _docker("tag", LOCAL_IMAGE, pushed)
    yield pushed
    _untag(pushed)


@dataclass(frozen=True)
class Run:
    """What one ``tinklet run`` printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """Standard output and error together."""
        return self.stdout + self.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory for the worker: no ``~/.docker/config.json`` unless a test writes one."""
    directory = tmp_path / "home"
    directory.mkdir()
    return directory


def tinklet_run(home: Path, image: str, *flags: str, runtime: str = "docker") -> Run:
    """Run a one-action workflow of ``image`` on ``runtime``; the action echoes GREETING."""
    workflow = home.parent / "workflow.yaml"
    workflow.write_text(
        "version: '0.1'\n"
        "name: registry-pull\n"
        "tasks:\n"
        "  - name: pull\n"
        "    actions:\n"
        "      - name: from-registry\n"
        f"        image: {image}\n"
        "        timeout: 60\n"
        f"        command: [echo, {GREETING!r}]\n"
    )
    # A unique agent id: a runtime removes the leftover containers of its agent when it opens.
    identifier = f"registry-test-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "tinklet_core", "--identifier", identifier, "run", str(workflow)]
    command += ["--runtime", runtime, "--loglevel", "debug", *flags]
    done = subprocess.run(
        command,
        env=isolated_environment(home),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def isolated_environment(home: Path) -> dict[str, str]:
    """This process's environment without tinklet settings, with ``home`` for every login file."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TINKLET_")}
    environment.update(
        HOME=str(home),
        DOCKER_CONFIG=str(home / ".docker"),  # docker-py's fallback logins
        REGISTRY_AUTH_FILE=str(home / "auth.json"),  # the Podman service's (absent: none)
        CONTAINERS_CONF=PODMAN_CONF,
    )
    return environment


def registry_flag(registry: TestRegistry, password: str | None = None, name: str | None = None) -> str:
    """A ``--registry`` JSON entry for the test registry."""
    entry = {
        "name": name or registry.host,
        "user": registry.username,
        "password": password or registry.password,
    }
    return json.dumps(entry)


def assert_succeeded(run: Run) -> None:
    assert run.returncode == 0, run.text
    assert "SUCCESS  pull/from-registry" in run.stdout
    assert "workflow registry-pull: SUCCESS (1 of 1 actions succeeded)" in run.stdout
    assert f"registry-pull/pull/from-registry | {GREETING}" in run.stderr  # the action's output, logged


def assert_pull_failed(run: Run) -> str:
    """The FAILED line's message, after checking the workflow failed on the pull."""
    assert run.returncode == 1, run.text
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, run.text
    assert "image pull failed: " in failed[0]
    assert GREETING not in run.stderr  # the action never ran
    return failed[0]


def assert_secret_kept(run: Run, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in run.text
        assert base64.b64encode(secret.encode()).decode() not in run.text


def test_docker_pulls_with_the_login_given_as_a_registry_flag(
    registry: TestRegistry, absent: str, home: Path
) -> None:
    before = len(registry.requests())
    run = tinklet_run(home, absent, "--registry", registry_flag(registry))
    assert_succeeded(run)
    assert_secret_kept(run, registry.password)
    assert _image_present(absent)
    reads = [r for r in registry.requests()[before:] if "/manifests/" in r.path]
    assert reads and all(r.status == 200 for r in reads)  # it was pulled, and the login was accepted


def test_the_registry_flag_accepts_a_url_for_the_registry_name(
    registry: TestRegistry, absent: str, home: Path
) -> None:
    run = tinklet_run(
        home, absent, "--registry", registry_flag(registry, name=f"https://{registry.host}/v2/")
    )
    assert_succeeded(run)


def test_a_wrong_password_fails_with_the_registrys_words_and_never_shows_a_password(
    registry: TestRegistry, absent: str, home: Path
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    run = tinklet_run(home, absent, "--registry", registry_flag(registry, password=wrong))
    message = assert_pull_failed(run)
    assert "unauthorized: authentication required" in message
    assert_secret_kept(run, wrong, registry.password)
    assert not _image_present(absent)


def test_without_a_login_the_pull_fails(registry: TestRegistry, absent: str, home: Path) -> None:
    # dockerd treats loopback registries as insecure and retries over plain HTTP, so the
    # registry's 401 surfaces as a reset connection: the words differ, the outcome does not.
    run = tinklet_run(home, absent)
    assert_pull_failed(run)
    assert not _image_present(absent)


@pytest.mark.parametrize("form", ["auth", "username-password"])
def test_docker_pulls_with_the_login_in_a_docker_config_file(
    registry: TestRegistry, absent: str, home: Path, tmp_path: Path, form: str
) -> None:
    if form == "auth":
        token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
        login = {"auth": token}
    else:
        login = {"username": registry.username, "password": registry.password}
    config = tmp_path / "elsewhere" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {f"https://{registry.host}": login}}))
    run = tinklet_run(home, absent, "--docker-config", str(config))
    assert_succeeded(run)
    assert_secret_kept(run, registry.password)


def test_docker_pulls_with_the_login_in_the_home_docker_config(
    registry: TestRegistry, absent: str, home: Path
) -> None:
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text(
        json.dumps({"auths": {registry.host: {"username": registry.username, "password": registry.password}}})
    )
    run = tinklet_run(home, absent)
    assert_succeeded(run)
    assert_secret_kept(run, registry.password)


def test_pull_always_pulls_a_present_image_and_missing_does_not(
    registry: TestRegistry, present: str, home: Path
) -> None:
    repository = present.split("/", 1)[1].rsplit(":", 1)[0]
    login = ("--registry", registry_flag(registry))
    before = len(registry.manifest_requests(repository))

    assert_succeeded(tinklet_run(home, present, "--pull", "missing", *login))
    assert len(registry.manifest_requests(repository)) == before

    assert_succeeded(tinklet_run(home, present, "--pull", "always", *login))
    pulls = registry.manifest_requests(repository)[before:]
    assert pulls and all(request.status == 200 for request in pulls)


def test_pull_missing_runs_a_present_image_while_the_registry_is_down(home: Path) -> None:
    with TestRegistry() as registry:
        image = registry.push(LOCAL_IMAGE, f"tinklet-test/registry-down-{uuid.uuid4().hex[:8]}")
        registry.stop()
        login = ("--registry", registry_flag(registry))

        assert_succeeded(tinklet_run(home, image, "--pull", "missing", *login))

        message = assert_pull_failed(tinklet_run(home, image, "--pull", "always", *login))
        assert "connection refused" in message


def _image_present(reference: str, cli: str = "docker") -> bool:
    found = subprocess.run([cli, "image", "inspect", reference], capture_output=True, check=False)
    return found.returncode == 0


def _untag(reference: str) -> None:
    if _image_present(reference):
        _docker("rmi", reference)


def _docker(*args: str) -> None:
    subprocess.run(["docker", *args], capture_output=True, check=True, timeout=60)


def test_the_test_registry_needs_tls_and_a_login_and_leaves_nothing_behind() -> None:
    with TestRegistry() as registry:
        repository = f"tinklet-test/registry-self-{uuid.uuid4().hex[:8]}"
        image = registry.push(LOCAL_IMAGE, repository)
        manifest = f"https://{registry.host}/v2/{repository}/manifests/latest"
        trusting = ssl.create_default_context(cafile=str(registry.ca_file))
        assert _https_status(manifest, trusting) == 401
        assert _https_status(manifest, trusting, registry.username, registry.password) == 200
        assert _https_status(manifest, trusting, registry.username, "wrong") == 401
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            _https_status(manifest, ssl.create_default_context())

        registry.stop()
        registry.start()  # the storage survives a restart (the port may change)
        manifest = f"https://{registry.host}/v2/{repository}/manifests/latest"
        assert _https_status(manifest, trusting, registry.username, registry.password) == 200
        podman_ca = registry.trust_for_podman()
        assert podman_ca.read_bytes() == registry.ca_file.read_bytes()
        root = registry.root
    assert not root.exists()
    assert not podman_ca.parent.exists()
    assert not _image_present(image)


def _https_status(url: str, context: ssl.SSLContext, user: str = "", password: str = "") -> int:
    request = urllib.request.Request(url, method="HEAD")
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    request.add_header("Accept", "application/vnd.docker.distribution.manifest.v2+json")
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def podman_absent(pushed: str) -> Iterator[str]:
    """``pushed``, not in Podman's storage; removed from it again afterwards."""
    _podman_untag(pushed)
    yield pushed
    _podman_untag(pushed)


@pytest.fixture
def podman_trusts(registry: TestRegistry) -> Iterator[None]:
    """Podman trusts the registry's CA for the test (it verifies loopback registries too)."""
    registry.trust_for_podman()
    yield
    registry.untrust_for_podman()


@needs_podman
def test_podman_pulls_with_the_login_given_as_a_registry_flag(
    registry: TestRegistry, podman_absent: str, podman_trusts: None, home: Path
) -> None:
    run = tinklet_run(home, podman_absent, "--registry", registry_flag(registry), runtime="podman")
    assert_succeeded(run)
    assert_secret_kept(run, registry.password)
    assert _image_present(podman_absent, "podman")


@needs_podman
def test_podman_fails_a_wrong_password_with_the_registrys_words(
    registry: TestRegistry, podman_absent: str, podman_trusts: None, home: Path
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    run = tinklet_run(
        home, podman_absent, "--registry", registry_flag(registry, password=wrong), runtime="podman"
    )
    message = assert_pull_failed(run)
    assert "unauthorized: authentication required" in message
    assert_secret_kept(run, wrong, registry.password)
    assert not _image_present(podman_absent, "podman")


@needs_podman
def test_podman_refuses_the_registry_until_its_ca_is_trusted(
    registry: TestRegistry, podman_absent: str, home: Path
) -> None:
    run = tinklet_run(home, podman_absent, "--registry", registry_flag(registry), runtime="podman")
    message = assert_pull_failed(run)
    assert "x509: certificate signed by unknown authority" in message
    assert_secret_kept(run, registry.password)


def _podman_untag(reference: str) -> None:
    if _image_present(reference, "podman"):
        subprocess.run(["podman", "rmi", reference], capture_output=True, check=True, timeout=60)
