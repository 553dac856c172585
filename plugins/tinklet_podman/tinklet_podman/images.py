"""Image references as Podman needs them: always fully qualified.

Docker reads ``busybox`` as ``docker.io/library/busybox``. Podman instead asks its short-name
resolution (registries.conf aliases, search registries, or a prompt), which on a worker is
either an error or a surprise. And images made with ``podman import`` / ``podman build``
without a registry live under ``localhost/``. So an unqualified action image is looked up as
``localhost/NAME`` first (an imported image wins, e.g. ``tinklet/busybox:latest`` runs
``localhost/tinklet/busybox:latest``) and otherwise means Docker Hub, as it does for Docker.
"""

from __future__ import annotations

from collections.abc import Callable

from tinklet_core.runtime import image_registry

LOCAL_PREFIX = "localhost/"
DOCKER_HUB = "docker.io"


def is_qualified(image: str) -> bool:
    """True when ``image`` names its registry (``quay.io/x``, ``127.0.0.1:5000/x``, ``localhost/x``)."""
    first, sep, _rest = image.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def docker_hub_reference(image: str) -> str:
    """``image`` (unqualified) as Docker reads it: ``busybox`` -> ``docker.io/library/busybox``."""
    if "/" not in image:
        return f"{DOCKER_HUB}/library/{image}"
    return f"{DOCKER_HUB}/{image}"


def resolve_image(image: str, exists_locally: Callable[[str], bool]) -> str:
    """The fully qualified reference to run for the action image ``image``.

    A qualified reference is kept. An unqualified one becomes ``localhost/IMAGE`` when Podman
    has that image (``exists_locally`` asks it), else the Docker Hub reference.
    """
    if is_qualified(image):
        return image
    local = LOCAL_PREFIX + image
    if exists_locally(local):
        return local
    return docker_hub_reference(image)


def is_local_only(reference: str) -> bool:
    """True for ``localhost/…`` images: Podman's name for images made here, with no registry
    to pull them from (``localhost:5000/…`` is a registry and is not local-only)."""
    return image_registry(reference) == "localhost"
