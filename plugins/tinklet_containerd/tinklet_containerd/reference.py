"""Image references as containerd names them: short names expanded to Docker Hub's.

containerd has no default registry: an image record is named by its full reference. Like the
tink agent (and ``nerdctl``), a reference without a registry is Docker Hub's, a single path
component is under ``library/``, and a reference without tag or digest is ``:latest``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinklet_core.runtime import image_registry

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


def normalise(image: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``; a full reference stays as it is."""
    registry = image_registry(image)
    rest = image if not image.startswith(f"{registry}/") else image[len(registry) + 1 :]
    if registry == DOCKER_HUB and "/" not in rest:
        rest = f"library/{rest}"
    name = rest.split("@", 1)[0]
    if "@" not in rest and ":" not in name.rsplit("/", 1)[-1]:
        rest += ":latest"
    return f"{registry}/{rest}"


@dataclass(frozen=True)
class Reference:
    """A full reference split up: ``registry/repository`` and a tag or digest."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, image: str) -> Reference:
        """Split ``image`` (normalised first)."""
        full = normalise(image)
        registry, _, path = full.partition("/")
        if "@" in path:
            path, _, digest = path.partition("@")
            repository, _, tag = path.partition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
            return cls(registry, repository, tag, digest)
        repository, _, tag = path.rpartition(":")
        return cls(registry, repository, tag)

    @property
    def object(self) -> str:
        """What the manifest is asked for by: the digest, else the tag."""
        return self.digest or self.tag
