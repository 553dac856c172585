"""Pulls on a private containerd from the project's test registry (TLS + htpasswd), for real:
the client-side pull containerd 1.6 needs, with the registry hook's login and the registry
hosts of a certs.d directory (CA, mirror, insecure)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from containerd_support import PrivateContainerd, busybox_archive, options
from tinklet_containerd.images import import_oci_archive
from tinklet_containerd.runtime import ContainerdRuntime

from tinklet_core.model import Action, Outcome, PullPhase, PullProgress, RegistryCredentials, State
from tinklet_core.runtime import ActionContext, PullPolicy, RuntimeSettings
from tinklet_core.testing.registry import TestRegistry

DOCKER_IMAGE = "tinklet/busybox:latest"  # in the shared dockerd (scripts/setup): what is pushed


@pytest.fixture
def certs_dir(containerd: PrivateContainerd) -> Iterator[Path]:
    """The private certs.d the runtime reads (emptied after each test)."""
    directory = containerd.root / "certs.d"
    directory.mkdir(exist_ok=True)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def pushed(registry: TestRegistry) -> str:
    """A repository (``tinklet-test/busybox-…``, tag ``v1``) only the registry has."""
    name = f"tinklet-test/busybox-{uuid.uuid4().hex[:8]}:v1"
    registry.push(DOCKER_IMAGE, name)
    return name


def hosts_toml(certs_dir: Path, registry: str, text: str) -> None:
    """Write ``certs.d/REGISTRY/hosts.toml``."""
    (certs_dir / registry).mkdir(parents=True, exist_ok=True)
    (certs_dir / registry / "hosts.toml").write_text(text)


def run(
    containerd: PrivateContainerd,
    agent_id: str,
    image: str,
    login: RegistryCredentials | None,
    policy: PullPolicy = PullPolicy.MISSING,
) -> tuple[Outcome, list[str], list[str], list[PullProgress]]:
    """Run ``cat /etc/os-release || echo ran`` from ``image``: outcome, output, the images
    whose login was asked for, the pull progress reported."""
    settings = RuntimeSettings(agent_id=agent_id, pull_policy=policy, options=options(containerd))
    runtime = ContainerdRuntime(settings)
    unique = f"{time.monotonic_ns()}"
    action = Action(f"wf-{unique}", "t", f"a-{unique}", agent_id, "pull", image, command=("echo", "ran"))
    lines: list[str] = []
    asked: list[str] = []
    progress: list[PullProgress] = []

    def credentials(wanted: str) -> RegistryCredentials | None:
        asked.append(wanted)
        return login

    context = ActionContext(
        action, settings, None, threading.Event(), lines.append, credentials, logging.getLogger("test"),
        pull_progress=progress.append,
    )  # fmt: skip
    try:
        outcome = runtime.tinklet_execute_action(context)
    finally:
        runtime.close()
    return outcome, lines, asked, progress


def login_of(registry: TestRegistry, password: str | None = None) -> RegistryCredentials:
    """The registry's login (or its user with another password)."""
    return RegistryCredentials(registry.host, registry.username, password or registry.password)


def test_a_private_image_is_pulled_with_the_registrys_login(
    containerd: PrivateContainerd, agent_id: str, registry: TestRegistry, pushed: str, certs_dir: Path
) -> None:
    hosts_toml(certs_dir, registry.host, f'server = "https://{registry.host}"\nca = "{registry.ca_file}"\n')
    image = f"{registry.host}/{pushed}"
    outcome, lines, asked, progress = run(containerd, agent_id, image, login_of(registry))
    assert (outcome.state, lines) == (State.SUCCESS, ["ran"]), outcome.reason
    assert asked == [image]
    assert image in containerd.ctr("images", "ls", "-q").stdout.split()
    assert progress[0].phase is PullPhase.STARTED and progress[-1].phase is PullPhase.FINISHED
    assert containerd.ctr("leases", "ls", "-q").stdout.split() == [], "the pull's lease is gone"
    again, _, _, _ = run(containerd, agent_id, image, login_of(registry))
    assert again.state is State.SUCCESS
    repository = pushed.partition(":")[0]
    served = [r.status for r in registry.manifest_requests(repository)]
    assert served == [401, 200], "one pull (challenged, then with the login); the present image is used as is"


def test_without_the_login_the_pull_fails_naming_it(
    containerd: PrivateContainerd, agent_id: str, registry: TestRegistry, pushed: str, certs_dir: Path
) -> None:
    hosts_toml(certs_dir, registry.host, f'ca = "{registry.ca_file}"\n')
    outcome, _, _, _ = run(containerd, agent_id, f"{registry.host}/{pushed}", None)
    assert outcome.state is State.FAILED
    assert f"no login was found for {registry.host}" in outcome.reason
    assert "401" in outcome.reason and "\n" not in outcome.reason


def test_a_wrong_password_fails_without_showing_it(
    containerd: PrivateContainerd, agent_id: str, registry: TestRegistry, pushed: str, certs_dir: Path
) -> None:
    hosts_toml(certs_dir, registry.host, f'ca = "{registry.ca_file}"\n')
    wrong = "wrong-" + uuid.uuid4().hex
    outcome, _, _, _ = run(containerd, agent_id, f"{registry.host}/{pushed}", login_of(registry, wrong))
    assert outcome.state is State.FAILED and "401" in outcome.reason
    assert wrong not in outcome.reason


def test_an_untrusted_certificate_fails_the_pull(
    containerd: PrivateContainerd, agent_id: str, registry: TestRegistry, pushed: str, certs_dir: Path
) -> None:
    outcome, _, _, _ = run(containerd, agent_id, f"{registry.host}/{pushed}", login_of(registry))
    assert outcome.state is State.FAILED
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.reason or "certificate" in outcome.reason


def test_docker_style_ca_files_are_honoured(
    containerd: PrivateContainerd, agent_id: str, registry: TestRegistry, pushed: str, certs_dir: Path
) -> None:
    (certs_dir / registry.host).mkdir()
    shutil.copyfile(registry.ca_file, certs_dir / registry.host / "ca.crt")
    outcome, _, _, _ = run(containerd, agent_id, f"{registry.host}/{pushed}", login_of(registry))
    assert outcome.state is State.SUCCESS, outcome.reason


def test_an_insecure_registry_skips_verification(
    containerd: PrivateContainerd, agent_id: str, registry: TestRegistry, pushed: str, certs_dir: Path
) -> None:
    hosts_toml(certs_dir, registry.host, f'[host."https://{registry.host}"]\n  skip_verify = true\n')
    outcome, _, _, _ = run(containerd, agent_id, f"{registry.host}/{pushed}", login_of(registry))
    assert outcome.state is State.SUCCESS, outcome.reason


def test_a_docker_hub_image_comes_from_the_configured_mirror(
    containerd: PrivateContainerd, agent_id: str, registry: TestRegistry, pushed: str, certs_dir: Path
) -> None:
    """docker.io is unreachable here: the image can only come from the mirror hosts.toml names."""
    hosts_toml(
        certs_dir, "docker.io",
        f'server = "https://registry-1.docker.io"\n[host."https://{registry.host}"]\n'
        f'  capabilities = ["pull", "resolve"]\n  ca = "{registry.ca_file}"\n',
    )  # fmt: skip
    outcome, lines, asked, _ = run(containerd, agent_id, pushed, login_of(registry))
    assert (outcome.state, lines) == (State.SUCCESS, ["ran"]), outcome.reason
    assert asked == [f"docker.io/{pushed}"]
    assert f"docker.io/{pushed}" in containerd.ctr("images", "ls", "-q").stdout.split()


def test_a_local_image_is_used_as_is_without_contacting_its_registry(
    containerd: PrivateContainerd, agent_id: str, tmp_path: Path
) -> None:
    image = f"127.0.0.1:1/tinklet-test/offline-{uuid.uuid4().hex[:8]}:1"  # nothing listens on port 1
    settings = RuntimeSettings(agent_id=agent_id, options=options(containerd))
    opened = ContainerdRuntime(settings)
    try:
        import_oci_archive(opened.engine.store, busybox_archive(tmp_path / "offline.tar"), image)
    finally:
        opened.close()
    outcome, lines, _, progress = run(containerd, agent_id, image, None)
    assert (outcome.state, lines, progress) == (State.SUCCESS, ["ran"], [])
    refused, _, _, _ = run(containerd, agent_id, image, None, policy=PullPolicy.ALWAYS)
    assert refused.state is State.FAILED and "127.0.0.1:1" in refused.reason
