"""Pull failures name the image and its registry, say when tinklet had no login, never a password."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from test_registry_pull import absent, assert_pull_failed, home, pushed, registry, tinklet_run

from tinklet_core.model import RegistryCredentials
from tinklet_core.pull_failure import pull_failure_message
from tinklet_core.testing.registry import TestRegistry, registry_tools_missing

__all__ = ["absent", "home", "pushed", "registry"]  # fixtures

SECRET = "Marker-Pull-77"


def test_a_failure_with_a_login_names_the_image_and_registry_and_masks_the_password() -> None:
    login = RegistryCredentials("127.0.0.1:5000", "eric", SECRET)
    token = base64.b64encode(f"eric:{SECRET}".encode()).decode()
    reason = f"unauthorized: authentication required\n(sent Basic {token}, password {SECRET})"
    message = pull_failure_message("127.0.0.1:5000/tools/disk:1", reason, login)
    assert message == (
        "image pull failed: 127.0.0.1:5000/tools/disk:1 from 127.0.0.1:5000: "
        "unauthorized: authentication required (sent Basic ***, password ***)"
    )


def test_a_failure_without_a_login_says_no_login_was_found() -> None:
    message = pull_failure_message("127.0.0.1:5000/a:1", "read: connection reset by peer", None)
    assert message == (
        "image pull failed: 127.0.0.1:5000/a:1 from 127.0.0.1:5000 "
        "(no login was found for 127.0.0.1:5000): read: connection reset by peer"
    )


def test_docker_hub_images_name_docker_io() -> None:
    assert pull_failure_message("busybox", "", None) == (
        "image pull failed: busybox from docker.io (no login was found for docker.io): no reason given"
    )


@pytest.mark.skipif(registry_tools_missing() is not None, reason=registry_tools_missing() or "")
def test_docker_names_the_image_registry_and_missing_login(
    registry: TestRegistry, absent: str, home: Path
) -> None:
    message = assert_pull_failed(tinklet_run(home, absent))
    assert (
        f"image pull failed: {absent} from {registry.host} (no login was found for {registry.host})"
        in message
    )


@pytest.mark.skipif(registry_tools_missing() is not None, reason=registry_tools_missing() or "")
def test_a_refused_login_names_the_image_and_registry(
    registry: TestRegistry, absent: str, home: Path
) -> None:
    wrong = json.dumps({"name": registry.host, "user": registry.username, "password": "wrong-" + SECRET})
    run = tinklet_run(home, absent, "--registry", wrong)
    message = assert_pull_failed(run)
    assert f"image pull failed: {absent} from {registry.host}: " in message
    assert "unauthorized" in message
    assert SECRET not in run.text
