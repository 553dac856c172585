"""Reading tinklet's settings, once, in one place.

Every option (the core's and each runtime plugin's) is described once as an :class:`OptionSpec`
and is then available as a flag ``--NAME``, an environment variable ``TINKLET_NAME`` and a key
``name`` in the YAML config file. Precedence: flags > environment > config file > defaults.
This module is the only one that reads the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinklet_core.errors import ConfigError
from tinklet_core.model import RegistryCredentials
from tinklet_core.runtime import Privilege, PullPolicy, RuntimeOption, RuntimeSettings
from tinklet_core.tls import TlsSettings

ENV_PREFIX = "TINKLET_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class OptionSpec:
    """One setting. ``scope`` is ``worker`` for options only the server loop uses."""

    name: str
    help: str
    kind: type = str
    default: Any = None
    multiple: bool = False
    choices: tuple[str, ...] = ()
    scope: str = "common"
    env_fallback: str | None = None

    @property
    def key(self) -> str:
        """The Python and config-file name: dashes become underscores."""
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        """The environment variable that sets this option."""
        return ENV_PREFIX + self.key.upper()


CORE_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "runtime", "Container runtime that runs actions (see 'tinklet plugins list').", default="docker"
    ),
    OptionSpec("tink", "Tink server address HOST:PORT.", scope="worker"),
    OptionSpec(
        "identifier", "This worker's id (agent id / MAC) as the Tink server knows it.", scope="worker"
    ),
    OptionSpec("protocol", "Tink protocol version.", default="v2", choices=("v2",), scope="worker"),
    OptionSpec("tls", "Connect to the Tink server over TLS.", kind=bool, default=False, scope="worker"),
    OptionSpec("tls-ca", "PEM file of CA certificates to trust instead of the system roots.", scope="worker"),
    OptionSpec("tls-cert", "PEM client certificate for mTLS (with --tls-key).", scope="worker"),
    OptionSpec("tls-key", "PEM private key of --tls-cert.", scope="worker"),
    OptionSpec("tls-server-name", "Expect this name in the server's certificate.", scope="worker"),
    OptionSpec("config", "YAML config file; its keys are the option names."),
    OptionSpec("loglevel", "Log level.", default="info", choices=("debug", "info", "warning", "error")),
    OptionSpec(
        "registry",
        'Registry login as JSON {"name": HOST, "user": U, "password": P}; repeatable.',
        multiple=True,
        default=(),
    ),
    OptionSpec(
        "docker-config", "Docker client config with registry logins.", default="~/.docker/config.json"
    ),
    OptionSpec(
        "pull", "When to pull an action image.", default="missing", choices=tuple(p.value for p in PullPolicy)
    ),
    OptionSpec(
        "action-privilege",
        "Privilege of action containers.",
        default="privileged",
        choices=tuple(p.value for p in Privilege),
    ),
    OptionSpec(
        "action-output",
        "Action output: 'log' (every line in the worker log) or 'tail' (kept only for failure messages).",
        default="log",
        choices=("log", "tail"),
    ),
    OptionSpec(
        "max-backoff", "Longest wait in seconds between retries.", kind=float, default=5.0, scope="worker"
    ),
)


def runtime_option_specs(options: Iterable[RuntimeOption]) -> list[OptionSpec]:
    """Turn runtime plugin options into option specs, skipping names the core already has."""
    core = {spec.name for spec in CORE_OPTIONS}
    specs: dict[str, OptionSpec] = {}
    for option in options:
        if option.name not in core:
            specs[option.name] = OptionSpec(
                option.name, option.help, option.kind, option.default, env_fallback=option.env_fallback
            )
    return list(specs.values())


@dataclass(frozen=True)
class Settings:
    """tinklet's settings after flags, environment, config file and defaults are merged."""

    runtime: str = "docker"
    tink: str | None = None
    identifier: str | None = None
    protocol: str = "v2"
    tls: TlsSettings = field(default_factory=TlsSettings)
    loglevel: str = "info"
    registries: tuple[RegistryCredentials, ...] = ()
    docker_config: Path | None = None
    pull_policy: PullPolicy = PullPolicy.MISSING
    privilege: Privilege = Privilege.PRIVILEGED
    max_backoff: float = 5.0
    action_output: str = "log"
    runtime_options: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def runtime_settings(self, agent_id: str) -> RuntimeSettings:
        """What a runtime factory (and each action) receives, for this worker's ``agent_id``."""
        return RuntimeSettings(
            agent_id=agent_id,
            pull_policy=self.pull_policy,
            privilege=self.privilege,
            options=self.runtime_options,
        )


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """True when the environment variable ``name`` is set to a true-ish value."""
    value = (os.environ if environ is None else environ).get(name, "")
    return value.strip().lower() in _TRUE


def load_settings(
    flags: Mapping[str, Any],
    runtime_options: Iterable[RuntimeOption] = (),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge ``flags`` (``None`` = not given), the environment, the config file and defaults."""
    environ = os.environ if environ is None else environ
    extra = runtime_option_specs(runtime_options)
    specs = [*CORE_OPTIONS, *extra]
    config_path = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG")
    file_values = read_config_file(Path(config_path)) if config_path else {}
    known = {spec.key for spec in specs}
    warnings = tuple(
        f"{config_path}: unknown setting {key!r} ignored" for key in file_values if key not in known
    )
    values = {spec.key: _resolve(spec, flags, environ, file_values) for spec in specs}
    return Settings(
        runtime=values["runtime"],
        tink=values["tink"],
        identifier=values["identifier"],
        protocol=values["protocol"],
        tls=TlsSettings(
            enabled=values["tls"],
            ca_file=_path(values["tls_ca"]),
            cert_file=_path(values["tls_cert"]),
            key_file=_path(values["tls_key"]),
            server_name=values["tls_server_name"],
        ),
        loglevel=values["loglevel"],
        registries=tuple(_registry(entry) for entry in values["registry"]),
        docker_config=_path(values["docker_config"], environ),
        pull_policy=PullPolicy(values["pull"]),
        privilege=Privilege(values["action_privilege"]),
        max_backoff=values["max_backoff"],
        action_output=values["action_output"],
        runtime_options={spec.key: values[spec.key] for spec in extra},
        warnings=warnings,
    )


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in a YAML config file, keys normalised to underscores."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of option names to values")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def _resolve(
    spec: OptionSpec, flags: Mapping[str, Any], environ: Mapping[str, str], file_values: Mapping[str, Any]
) -> Any:
    flag = flags.get(spec.key)
    if flag is not None and not (spec.multiple and not flag):
        value, origin = flag, f"--{spec.name}"
    elif spec.env in environ:
        value, origin = _from_env(spec, environ[spec.env]), spec.env
    elif spec.key in file_values:
        value, origin = file_values[spec.key], f"config key {spec.key!r}"
    elif spec.env_fallback and environ.get(spec.env_fallback):
        value, origin = environ[spec.env_fallback], spec.env_fallback
    else:
        return spec.default
    return _check(spec, value, origin)


def _from_env(spec: OptionSpec, raw: str) -> Any:
    if not spec.multiple:
        return raw
    text = raw.strip()
    if not text:
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return [text]
    return parsed if isinstance(parsed, list) else [parsed]


def _check(spec: OptionSpec, value: Any, origin: str) -> Any:
    if spec.multiple:
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(items)
    try:
        value = _convert(spec.kind, value)
    except ValueError:
        raise ConfigError(f"{origin}: expected {spec.kind.__name__}, got {value!r}") from None
    if spec.choices and value not in spec.choices:
        raise ConfigError(f"{origin}: {value!r} is not one of {', '.join(spec.choices)}")
    return value


def _convert(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(value)
    if kind in (int, float):
        if isinstance(value, bool):
            raise ValueError(value)
        return kind(value)
    return str(value)


def _path(value: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    if not value:
        return None
    if value.startswith("~") and environ is not None and "HOME" in environ:
        return Path(environ["HOME"] + value[1:])
    return Path(value).expanduser()


def _registry(entry: Any) -> RegistryCredentials:
    """One ``--registry`` entry; errors never echo the entry, which holds a password."""
    if isinstance(entry, str):
        try:
            entry = json.loads(entry)
        except ValueError:
            raise ConfigError("--registry: an entry is not valid JSON") from None
    if not isinstance(entry, dict):
        raise ConfigError(
            '--registry: an entry must be a JSON object like {"name": ..., "user": ..., "password": ...}'
        )
    name = entry.get("name") or entry.get("registry")
    user = entry.get("user", entry.get("username"))
    password = entry.get("password", entry.get("pass"))
    if not name or user is None or password is None:
        raise ConfigError(f"--registry: entry for {name or '?'!r} needs name, user and password")
    return RegistryCredentials(registry=str(name), username=str(user), password=str(password))
