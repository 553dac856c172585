"""Pull failures name the image and its registry, say when tinklet had no login, never a password."""

from __future__ import annotations

import base64

from tinklet_core.model import RegistryCredentials
from tinklet_core.pull_failure import pull_failure_message

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
