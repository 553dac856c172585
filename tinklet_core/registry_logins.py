"""Registry logins given to tinklet: from ``--registry``, ``--registry-file``, ``TINKLET_REGISTRY``
and the config file's ``registry`` key (``@FILE`` entries read from a file), merged one per
registry, and the advice about where they are kept (visible in ``ps``, a file others can read).
Errors and warnings never echo a login.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tinklet_core.agent_compat import launcher_registry_login
from tinklet_core.errors import ConfigError
from tinklet_core.model import RegistryCredentials
from tinklet_core.option_specs import CORE_OPTIONS, value_from_env
from tinklet_core.redaction import described_value
from tinklet_core.runtime import normalise_registry
from tinklet_core.yaml_files import read_yaml_file


def registry_logins(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
    registry_file: str | None,
) -> tuple[RegistryCredentials, ...]:
    """Registry logins from every source, merged: one login per registry, the first source wins.

    Sources in order: ``--registry`` flags, ``--registry-file``, ``TINKLET_REGISTRY``, the config
    file's ``registry`` key (the docker config is asked later, by the registry hook). An entry
    ``@FILE`` stands for the logins in FILE. Each login remembers its source, for the debug log.
    """
    logins: list[RegistryCredentials] = []
    for origin, entries in _sources(flags, environ, file_values, registry_file):
        for entry in entries:
            logins.extend(_registry_entries(entry, origin))
    return merge_logins([*logins, *launcher_registry_login(environ)])


def registry_warnings(
    flags: Mapping[str, Any],
    registry_file: str | None,
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
) -> tuple[str, ...]:
    """Advice about where logins are kept: a command-line password is visible in ``ps``, a login
    file (``--registry-file`` or an ``@FILE`` entry of any source) readable by other users is
    not private. Neither names a password; a file is named only when its path is safe to show."""
    found = []
    if any(not _file_entry(entry) for entry in flags.get("registry") or ()):
        found.append(
            "--registry on the command line is visible to every user of this machine (ps); "
            "prefer --registry-file or --registry @FILE"
        )
    sources = _sources(flags, environ or {}, file_values or {}, registry_file)
    files = [_file_entry(entry) for _origin, entries in sources for entry in entries]
    for path in dict.fromkeys(path for path in files if path is not None):
        with contextlib.suppress(OSError, ValueError):
            if path.stat().st_mode & 0o077:
                shown = described_value("path", str(path), path=True)
                found.append(f"registry login file {shown} is readable by other users; chmod 600 it")
    return tuple(found)


def _sources(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
    registry_file: str | None,
) -> list[tuple[str, list[Any]]]:
    """Each source of logins, in order, with its entries: ``(origin, entries)``."""
    spec = next(spec for spec in CORE_OPTIONS if spec.key == "registry")
    sources: list[tuple[str, Any]] = []
    if flags.get("registry"):
        sources.append(("--registry", flags["registry"]))
    if registry_file:
        sources.append(("--registry-file", [f"@{registry_file}"]))
    if spec.env in environ:
        sources.append((spec.env, value_from_env(spec, environ[spec.env])))
    if file_values.get("registry") is not None:
        sources.append(("config key 'registry'", file_values["registry"]))
    return [
        (origin, list(value) if isinstance(value, (list, tuple)) else [value]) for origin, value in sources
    ]


def _file_entry(entry: Any) -> Path | None:
    """The file an ``@FILE`` entry names, else ``None``."""
    if isinstance(entry, str) and entry.strip().startswith("@"):
        return Path(entry.strip()[1:]).expanduser()
    return None


def merge_logins(logins: Iterable[RegistryCredentials]) -> tuple[RegistryCredentials, ...]:
    """The first login for each registry (names compared after normalising), in order."""
    merged: dict[str, RegistryCredentials] = {}
    for login in logins:
        merged.setdefault(normalise_registry(login.registry), login)
    return tuple(merged.values())


def _registry_entries(entry: Any, origin: str) -> list[RegistryCredentials]:
    """The logins of one entry: a JSON object, a mapping, or ``@FILE`` (a login or a list)."""
    path = _file_entry(entry)
    if path is not None:
        where = f"{origin}: file {described_value('path', str(path))}"
        return [_registry(item, where) for item in read_registry_file(path, where)]
    return [_registry(entry, origin)]


def read_registry_file(path: Path, where: str) -> list[Any]:
    """The entries of a registry login file (JSON or YAML; one login or a list). Never echoed."""
    data = read_yaml_file(path, ConfigError, f"{where} cannot be read", f"{where} is not valid JSON or YAML")
    if data is None:
        return []
    return data if isinstance(data, list) else [data]


def _registry(entry: Any, origin: str = "--registry") -> RegistryCredentials:
    """One registry login; keys in any case (``Name``/``User``/``Pass`` as the Go tinklet documents).

    Errors never echo the entry, which holds a password.
    """
    if isinstance(entry, str):
        try:
            entry = json.loads(entry)
        except ValueError:
            raise ConfigError(f"{origin}: an entry is not valid JSON") from None
    if not isinstance(entry, dict):
        raise ConfigError(
            f'{origin}: an entry must be a JSON object like {{"name": ..., "user": ..., "password": ...}}'
        )
    fields = {str(key).lower(): value for key, value in entry.items()}
    name = _first(fields, "name", "registry")
    user = _first(fields, "user", "username")
    password = _first(fields, "password", "pass")
    if not name or user is None or password is None:
        shown = described_value("name", name) if name else "'?'"
        raise ConfigError(f"{origin}: entry for {shown} needs name, user and password")
    return RegistryCredentials(registry=str(name), username=str(user), password=str(password), source=origin)


def _first(fields: Mapping[str, Any], *keys: str) -> Any:
    return next((fields[key] for key in keys if fields.get(key) is not None), None)
