"""The core's registry-credentials hook: configured logins first, then the docker client config.

Configured logins (``--registry``, ``--registry-file``, ``TINKLET_REGISTRY``, the config file;
merged by :func:`tinklet_core.config.registry_logins`) answer first. Then the docker config is
read the way the docker CLI reads it: a ``credHelpers`` entry for the registry, else the
``credsStore``, runs ``docker-credential-NAME get`` (the server address on stdin, JSON
``{"ServerURL", "Username", "Secret"}`` on stdout); else the ``auths`` entry. A missing or failing
helper, a broken file or an unreadable entry is a warning naming the file or helper, never a
crash. The debug log says which source answered for which registry; passwords never reach a log
or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import RegistryCredentials
from tinklet_core.redaction import mask_secret

log = logging.getLogger("tinklet.registry")
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT = 10.0
#: The ``Username`` a credential helper returns for an identity token rather than a password.
IDENTITY_TOKEN_USER = "<token>"


def normalise_registry(name: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``HOST:PORT/`` → ``HOST:PORT``."""
    host = name.strip()
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _DOCKER_HUB_ALIASES else host


@dataclass(frozen=True)
class DockerConfig:
    """What a docker client config says about logins: inline ``auths`` and credential helpers."""

    path: Path
    auths: dict[str, dict[str, Any]] = field(default_factory=dict)
    cred_helpers: dict[str, str] = field(default_factory=dict)
    creds_store: str | None = None


def load_docker_config(path: Path) -> DockerConfig:
    """The login parts of a docker config; a missing file is empty, a broken one warns and is empty."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return DockerConfig(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not valid JSON"
        log.warning("ignoring docker config %s: %s", path, reason)
        return DockerConfig(path)
    if not isinstance(data, dict):
        log.warning("ignoring docker config %s: not a JSON object", path)
        return DockerConfig(path)
    auths = _mapping(data.get("auths"))
    helpers = _mapping(data.get("credHelpers"))
    store = data.get("credsStore")
    return DockerConfig(
        path,
        auths={str(key): value for key, value in auths.items() if isinstance(value, dict)},
        cred_helpers={normalise_registry(str(key)): str(value) for key, value in helpers.items() if value},
        creds_store=str(store) if isinstance(store, str) and store else None,
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_docker_config(path: Path) -> list[RegistryCredentials]:
    """The inline ``auths`` logins of a docker client config; a missing or broken file gives none."""
    config = load_docker_config(path)
    found = []
    for registry, entry in config.auths.items():
        login = _inline_login(config.path, registry, entry)
        if login is not None:
            found.append(login)
    return found


def _inline_login(path: Path, registry: str, entry: dict[str, Any]) -> RegistryCredentials | None:
    username, password = entry.get("username"), entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            log.warning("ignoring unreadable login for %s in %s", registry, path)
            return None
        username, sep, password = decoded.partition(":")
        if not sep:
            log.warning("ignoring unreadable login for %s in %s", registry, path)
            return None
    if not username or password is None:
        return None
    source = f"docker config {path} (auths)"
    return RegistryCredentials(normalise_registry(registry), str(username), str(password), source=source)


#: Runs ``docker-credential-NAME get`` with ``server`` on stdin: (exit code, stdout) or OSError.
HelperRunner = Callable[[str, str], "tuple[int, str]"]


def run_helper(program: str, server: str) -> tuple[int, str]:
    """Run ``PROGRAM get`` with ``server`` on stdin; its exit code and standard output."""
    done = subprocess.run(
        [program, "get"],
        input=server,
        capture_output=True,
        text=True,
        timeout=HELPER_TIMEOUT,
        check=False,
    )
    return done.returncode, done.stdout


def helper_login(
    helper: str, registry: str, origin: str, run: HelperRunner = run_helper
) -> RegistryCredentials | None:
    """The login ``docker-credential-HELPER`` holds for ``registry``, or ``None`` (with a warning
    when the helper is missing or fails; "not found" is quiet, at debug level)."""
    program = HELPER_PREFIX + helper
    servers = (
        [DOCKER_HUB_SERVER, "docker.io"] if registry == "docker.io" else [registry, f"https://{registry}"]
    )
    for server in servers:
        try:
            code, output = run(program, server)
        except FileNotFoundError:
            log.warning(
                "%s names credential helper %s, which is not installed (not on PATH)", origin, program
            )
            return None
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("credential helper %s failed for %s: %s", program, registry, type(exc).__name__)
            return None
        if code != 0:
            if "not found" in output.lower():
                continue
            log.warning(
                "credential helper %s failed for %s (exit code %d): %s",
                program,
                registry,
                code,
                " ".join(output.split())[:200] or "no output",
            )
            return None
        return _parse_helper_answer(output, program, registry)
    log.debug("credential helper %s has no login for %s", program, registry)
    return None


def _parse_helper_answer(output: str, program: str, registry: str) -> RegistryCredentials | None:
    try:
        answer = json.loads(output)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        log.warning("credential helper %s gave an unreadable answer for %s", program, registry)
        return None
    if username == IDENTITY_TOKEN_USER:
        log.warning(
            "credential helper %s holds an identity token for %s; tinklet can pass only a user "
            "and password, so the pull goes without it",
            program,
            registry,
        )
        return None
    return RegistryCredentials(registry, username, secret, source=f"credential helper {program}")


def docker_config_login(
    path: Path, registry: str, run: HelperRunner = run_helper
) -> RegistryCredentials | None:
    """The login the docker config at ``path`` gives ``registry`` (normalised), as the docker CLI
    finds it: ``credHelpers`` entry, else ``credsStore``, else the inline ``auths`` entry."""
    config = load_docker_config(path)
    helper = config.cred_helpers.get(registry)
    if helper:
        login = helper_login(helper, registry, f"docker config {path} (credHelpers)", run)
        if login is not None:
            return login
    if config.creds_store:
        login = helper_login(config.creds_store, registry, f"docker config {path} (credsStore)", run)
        if login is not None:
            return login
    for key, entry in config.auths.items():
        if normalise_registry(key) == registry:
            login = _inline_login(path, key, entry)
            if login is not None:
                return login
    return None


class ConfiguredRegistryCredentials:
    """Answers ``tinklet_registry_credentials`` from the configured logins, then docker's file."""

    def __init__(
        self,
        registries: Iterable[RegistryCredentials],
        docker_config: Path | None,
        run: HelperRunner = run_helper,
    ) -> None:
        self._registries = tuple(registries)
        self._docker_config = docker_config
        self._run = run

    @hookimpl(trylast=True)
    def tinklet_registry_credentials(self, registry: str) -> RegistryCredentials | None:
        """Credentials for ``registry`` or ``None``; the docker config is read at each pull."""
        wanted = normalise_registry(registry)
        found = next((e for e in self._registries if normalise_registry(e.registry) == wanted), None)
        if found is None and self._docker_config is not None:
            found = docker_config_login(self._docker_config, wanted, self._run)
        if found is None:
            log.debug("registry %s: no login found", wanted)
        else:
            source = mask_secret(found.source or "configured", found.password)
            log.debug("registry %s: login for user %s from %s", wanted, found.username, source)
        return found
