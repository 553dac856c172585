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
import contextlib
import json
import logging
import os
import selectors
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tinklet_core.hookspecs import hookimpl
from tinklet_core.log_safe import loggable
from tinklet_core.model import RegistryCredentials
from tinklet_core.redaction import described_value, mask_secret
from tinklet_core.runtime import normalise_registry

log = logging.getLogger("tinklet.registry")
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT = 10.0
#: The most a credential helper may print: a login is a few hundred bytes, an identity token a
#: few KiB. Past this the helper is stopped and its answer ignored (with a warning naming it).
HELPER_OUTPUT_LIMIT = 64 * 1024
#: The ``Username`` a credential helper returns for an identity token rather than a password.
IDENTITY_TOKEN_USER = "<token>"
#: How much of a failing helper's output its warning shows.
HELPER_MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class DockerConfig:
    """What a docker client config says about logins: inline ``auths`` and credential helpers."""

    path: Path
    auths: dict[str, dict[str, Any]] = field(default_factory=dict)
    cred_helpers: dict[str, str] = field(default_factory=dict)
    creds_store: str | None = None


def load_docker_config(path: Path, problems: list[str] | None = None) -> DockerConfig:
    """The login parts of a docker config; a missing file is empty. What is wrong with a broken
    one (not JSON, not an object, ``auths``/``credHelpers`` of the wrong shape) is appended to
    ``problems`` as one line each, or logged as a warning when ``problems`` is ``None``; the
    readable parts are still used."""
    found: list[str] = [] if problems is None else problems
    config = _parse_docker_config(path, found)
    if problems is None:
        for problem in found:
            log.warning("%s", problem)
    return config


def _parse_docker_config(path: Path, problems: list[str]) -> DockerConfig:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return DockerConfig(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not valid JSON"
        problems.append(f"ignoring docker config {_shown(path)}: {reason}")
        return DockerConfig(path)
    if not isinstance(data, dict):
        problems.append(f"ignoring docker config {_shown(path)}: not a JSON object")
        return DockerConfig(path)
    auths = _section(data, "auths", path, problems)
    helpers = _section(data, "credHelpers", path, problems)
    store = data.get("credsStore")
    if store is not None and not isinstance(store, str):
        problems.append(f"ignoring credsStore in docker config {_shown(path)}: not a string")
    kept_auths: dict[str, dict[str, Any]] = {}
    for key, value in auths.items():
        if isinstance(value, dict) and not isinstance(value.get("auth", ""), str):
            problems.append(
                f"ignoring unreadable login for {loggable(str(key))} in {_shown(path)}: auth is not a string"
            )
        elif isinstance(value, dict):
            kept_auths[str(key)] = value
        else:
            problems.append(
                f"ignoring unreadable login for {loggable(str(key))} in {_shown(path)}: not a JSON object"
            )
    return DockerConfig(
        path,
        auths=kept_auths,
        cred_helpers={normalise_registry(str(key)): str(value) for key, value in helpers.items() if value},
        creds_store=store if isinstance(store, str) and store else None,
    )


def _shown(path: Path) -> str:
    """The docker config's path as messages name it (never a value pasted in place of a path)."""
    return described_value("docker_config", str(path), path=True)


def _section(data: dict[str, Any], name: str, path: Path, problems: list[str]) -> dict[str, Any]:
    """``data[name]`` when it is a mapping; ``{}`` (and a problem) when it is something else."""
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"ignoring {name} in docker config {_shown(path)}: not a JSON object")
        return {}
    return value


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
            log.warning("ignoring unreadable login for %s in %s", loggable(registry), _shown(path))
            return None
        username, sep, password = decoded.partition(":")
        if not sep:
            log.warning("ignoring unreadable login for %s in %s", loggable(registry), _shown(path))
            return None
    if not username or password is None:
        return None
    source = f"docker config {_shown(path)} (auths)"
    return RegistryCredentials(normalise_registry(registry), str(username), str(password), source=source)


#: Runs ``docker-credential-NAME get`` with ``server`` on stdin: (exit code, stdout) or OSError.
HelperRunner = Callable[[str, str], "tuple[int, str]"]


class HelperOutputTooLong(OSError):
    """A credential helper printed more than :data:`HELPER_OUTPUT_LIMIT` bytes."""


def run_helper(program: str, server: str) -> tuple[int, str]:
    """Run ``PROGRAM get`` with ``server`` on stdin; its exit code and standard output (its
    standard error is discarded). Output past :data:`HELPER_OUTPUT_LIMIT` stops the helper and
    raises :class:`HelperOutputTooLong`; a helper still running after :data:`HELPER_TIMEOUT` is
    killed (``subprocess.TimeoutExpired``)."""
    with subprocess.Popen(
        [program, "get"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        try:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(server.encode())
                process.stdin.close()
            output = _read_bounded(process.stdout, HELPER_TIMEOUT)
            code = process.wait(timeout=HELPER_TIMEOUT)
        except BaseException:
            process.kill()
            raise
    return code, output.decode("utf-8", "replace")


def _read_bounded(stream: IO[bytes], timeout: float) -> bytes:
    """At most :data:`HELPER_OUTPUT_LIMIT` bytes of ``stream`` up to its end, within ``timeout``."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise subprocess.TimeoutExpired("credential helper", timeout)
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > HELPER_OUTPUT_LIMIT:
                raise HelperOutputTooLong(f"printed more than {HELPER_OUTPUT_LIMIT // 1024} KiB")
            chunks.append(chunk)


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
        except HelperOutputTooLong as exc:
            log.warning("credential helper %s failed for %s: it %s; ignored", program, registry, exc)
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
                loggable(" ".join(output.split()), HELPER_MESSAGE_LIMIT) or "no output",
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
    path: Path, registry: str, run: HelperRunner = run_helper, problems: list[str] | None = None
) -> RegistryCredentials | None:
    """The login the docker config at ``path`` gives ``registry`` (normalised), as the docker CLI
    finds it: ``credHelpers`` entry, else ``credsStore``, else the inline ``auths`` entry.
    What is wrong with the file goes to ``problems`` (see :func:`load_docker_config`)."""
    config = load_docker_config(path, problems)
    helper = config.cred_helpers.get(registry)
    if helper:
        login = helper_login(helper, registry, f"docker config {_shown(path)} (credHelpers)", run)
        if login is not None:
            return login
    if config.creds_store:
        login = helper_login(config.creds_store, registry, f"docker config {_shown(path)} (credsStore)", run)
        if login is not None:
            return login
    for key, entry in config.auths.items():
        if normalise_registry(key) == registry:
            login = _inline_login(path, key, entry)
            if login is not None:
                return login
    return None


class ConfiguredRegistryCredentials:
    """Answers ``tinklet_registry_credentials`` from the configured logins, then docker's file.

    The docker config is checked once when this is made (at start, for every runtime alike: a
    file of the wrong shape is a warning, never an error) and read again at each pull; each
    problem with it is warned about once.
    """

    def __init__(
        self,
        registries: Iterable[RegistryCredentials],
        docker_config: Path | None,
        run: HelperRunner = run_helper,
    ) -> None:
        self._registries = tuple(registries)
        self._docker_config = docker_config
        self._run = run
        self._warned: set[str] = set()
        if docker_config is not None:
            problems: list[str] = []
            load_docker_config(docker_config, problems)
            self._warn(problems)

    def _warn(self, problems: Iterable[str]) -> None:
        for problem in problems:
            if problem not in self._warned:
                self._warned.add(problem)
                log.warning("%s", problem)

    @hookimpl(trylast=True)
    def tinklet_registry_credentials(self, registry: str) -> RegistryCredentials | None:
        """Credentials for ``registry`` or ``None``; the docker config is read at each pull."""
        wanted = normalise_registry(registry)
        found = next((e for e in self._registries if normalise_registry(e.registry) == wanted), None)
        if found is None and self._docker_config is not None:
            problems: list[str] = []
            found = docker_config_login(self._docker_config, wanted, self._run, problems)
            self._warn(problems)
        if found is None:
            log.debug("registry %s: no login found", wanted)
        else:
            source = mask_secret(found.source or "configured", found.password)
            log.debug("registry %s: login for user %s from %s", wanted, found.username, source)
        return found
