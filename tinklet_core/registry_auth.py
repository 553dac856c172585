"""The core's registry-credentials hook: ``--registry`` entries, then ``~/.docker/config.json``.

Credential helpers (``credsStore``/``credHelpers``) are not run: a plugin can add them through
``tinklet_registry_credentials``. Passwords never reach a log or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import RegistryCredentials

log = logging.getLogger("tinklet.registry")
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def normalise_registry(name: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``HOST:PORT/`` → ``HOST:PORT``."""
    host = name.strip()
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _DOCKER_HUB_ALIASES else host


def read_docker_config(path: Path) -> list[RegistryCredentials]:
    """The ``auths`` logins of a docker client config; a missing or broken file gives none."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("ignoring docker config %s: %s", path, exc.__class__.__name__)
        return []
    found = []
    auths = data.get("auths") if isinstance(data, dict) else None
    for registry, entry in (auths or {}).items():
        if not isinstance(entry, dict):
            continue
        username, password = entry.get("username"), entry.get("password")
        if entry.get("auth"):
            try:
                username, _sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                log.warning("ignoring unreadable login for %s in %s", registry, path)
                continue
        if username and password is not None:
            found.append(RegistryCredentials(normalise_registry(registry), username, password))
    return found


class ConfiguredRegistryCredentials:
    """Answers ``tinklet_registry_credentials`` from the flags/config first, then docker's file."""

    def __init__(self, registries: Iterable[RegistryCredentials], docker_config: Path | None) -> None:
        self._registries = tuple(registries)
        self._docker_config = docker_config

    @hookimpl(trylast=True)
    def tinklet_registry_credentials(self, registry: str) -> RegistryCredentials | None:
        """Credentials for ``registry`` or ``None``; the docker config is read at each pull."""
        wanted = normalise_registry(registry)
        for entry in self._registries:
            if normalise_registry(entry.registry) == wanted:
                return entry
        if self._docker_config is not None:
            for entry in read_docker_config(self._docker_config):
                if entry.registry == wanted:
                    return entry
        return None
