"""Reading tinklet's settings, once, in one place.

Every option (the core's and each plugin's) is described once as an :class:`OptionSpec` and is
then available as a flag ``--NAME``, an environment variable ``TINKLET_NAME`` and a key ``name``
in the YAML config file. Precedence: flags > environment > config file > defaults. Each option
has an *owner*: ``core``, or the plugin (runtime, transport) that declared it; a plugin's values
are kept apart (:attr:`Settings.plugin_options`) and handed only to their owner. This module is
the only one that reads the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinklet_core.agent_compat import (
    SECRET_VARIABLES,
    fallback_value,
    fallback_variables,
    launcher_registry_login,
)
from tinklet_core.errors import ConfigError
from tinklet_core.model import RegistryCredentials
from tinklet_core.options import PluginOption
from tinklet_core.proxy import ProxySettings
from tinklet_core.redaction import described_value, option_error
from tinklet_core.registry_auth import normalise_registry
from tinklet_core.runtime import Privilege, PullPolicy, RuntimeSettings
from tinklet_core.state_dir import state_dir_warnings
from tinklet_core.tls import TlsSettings, ca_location

ENV_PREFIX = "TINKLET_"
CORE = "core"
MAX_REPORT_GRACE = 5.0
"""The longest --report-grace: with it and the container's stop, tinklet exits within 10 s."""
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class OptionSpec:
    """One setting. ``scope`` is ``worker`` for options only the server loop uses. ``owner`` is
    ``core`` or the plugin that declared it (``heading`` is how ``--help`` titles its group).
    ``aliases`` are other long names (``id`` for ``identifier``), each with its own flag and
    ``TINKLET_`` variable."""

    name: str
    help: str
    kind: type = str
    default: Any = None
    multiple: bool = False
    choices: tuple[str, ...] = ()
    scope: str = "common"
    env_fallback: str | None = None
    owner: str = CORE
    heading: str = "Options"
    aliases: tuple[str, ...] = ()
    more_fallbacks: tuple[str, ...] = ()  # read after env_fallback, in order
    separator: str = ""  # a multiple option's environment value: split on it (else JSON)

    @property
    def key(self) -> str:
        """The Python and config-file name: dashes become underscores."""
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        """The environment variable that sets this option."""
        return ENV_PREFIX + self.key.upper()

    @property
    def env_names(self) -> tuple[str, ...]:
        """Every environment variable that sets this option, the main one first."""
        return (self.env, *(ENV_PREFIX + alias.replace("-", "_").upper() for alias in self.aliases))


CORE_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "runtime", "Container runtime that runs actions (see 'tinklet plugins list').", default="docker"
    ),
    OptionSpec("tink", "Tink server address HOST:PORT.", scope="worker"),
    OptionSpec(
        "identifier",
        "This worker's id (agent id / MAC) as the Tink server knows it.",
        scope="worker",
        aliases=("id",),
    ),
    OptionSpec(
        "protocol",
        "The transport that talks to the Tink server (see 'tinklet plugins list').",
        default="v2",
        choices=("v2",),
        scope="worker",
    ),
    OptionSpec(
        "tls",
        "Connect to the Tink server over TLS (on whenever another --tls-* option is given).",
        kind=bool,
        default=False,
        scope="worker",
    ),
    OptionSpec(
        "tls-ca",
        "CA certificates (PEM) to trust instead of the system roots: a file, a file:// URL or an "
        "http(s):// URL fetched at start (e.g. http://TINK:42114/cert).",
        scope="worker",
    ),
    OptionSpec("tls-cert", "PEM client certificate for mTLS (with --tls-key).", scope="worker"),
    OptionSpec("tls-key", "PEM private key of --tls-cert.", scope="worker"),
    OptionSpec("tls-server-name", "Expect this name in the server's certificate.", scope="worker"),
    OptionSpec(
        "tls-insecure",
        "TLS without verifying the server: trust whatever certificate it presents (warned at "
        "start). Turns TLS on unless --no-tls/TINKERBELL_TLS=false says otherwise.",
        kind=bool,
        default=False,
        scope="worker",
    ),
    OptionSpec(
        "state-dir",
        "Host directory for per-action files (the action's /tinkerbell); in a container it must "
        "be a directory the engine's host shares at the same path (the image uses /worker). "
        "Default: a private temporary directory.",
    ),
    OptionSpec("config", "YAML config file; its keys are the option names."),
    OptionSpec("loglevel", "Log level.", default="info", choices=("debug", "info", "warning", "error")),
    OptionSpec(
        "log-format",
        "Log line format: text for people, json for one JSON object per line (Loki, journald).",
        default="text",
        choices=("text", "json"),
    ),
    OptionSpec(
        "registry",
        'Registry login as JSON {"name": HOST, "user": U, "password": P} (keys in any case; "pass" '
        "works too), or @FILE to read logins from a file; repeatable. Visible in ps: prefer --registry-file.",
        multiple=True,
        default=(),
    ),
    OptionSpec(
        "registry-file",
        "File of registry logins (a JSON/YAML login or list of them); keeps passwords out of ps.",
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
    # The proxy: also read from the usual variables, uppercase first (see tinklet_core.proxy).
    OptionSpec(
        "http-proxy",
        "Proxy URL for plain HTTP, in every action's environment (HTTP_PROXY/http_proxy).",
        env_fallback="HTTP_PROXY",
        more_fallbacks=("http_proxy",),
    ),
    OptionSpec(
        "https-proxy",
        "Proxy URL for HTTPS, in every action's environment (HTTPS_PROXY/https_proxy).",
        env_fallback="HTTPS_PROXY",
        more_fallbacks=("https_proxy",),
    ),
    OptionSpec(
        "no-proxy",
        "Hosts reached without the proxy, comma-separated (NO_PROXY/no_proxy).",
        env_fallback="NO_PROXY",
        more_fallbacks=("no_proxy",),
    ),
    OptionSpec(
        "max-backoff", "Longest wait in seconds between retries.", kind=float, default=5.0, scope="worker"
    ),
    OptionSpec(
        "agent-attributes",
        "Send this machine's hardware facts with each v2 GetAction ('tinklet agent-attributes' shows them).",
        kind=bool,
        default=True,
        scope="worker",
    ),
    OptionSpec(
        "report-grace",
        "Seconds a status report in flight may still take when tinklet is stopping.",
        kind=float,
        default=3.0,
        scope="worker",
    ),
)


def plugin_option_specs(
    groups: Iterable[tuple[str, str, Sequence[PluginOption], str]],
) -> tuple[list[OptionSpec], list[str]]:
    """Turn plugin options into option specs: ``groups`` holds ``(owner, heading, options,
    scope)`` for each plugin, runtime or transport. A name the core or an earlier owner already
    has is refused: the warnings say which, naming both owners."""
    taken: dict[str, str] = {}
    for spec in CORE_OPTIONS:
        for name in (spec.name, *spec.aliases):
            taken[name] = "the core"
    specs: list[OptionSpec] = []
    warnings: list[str] = []
    for owner, heading, options, scope in groups:
        for option in options:
            if option.name in taken:
                if taken[option.name] != heading:
                    warnings.append(
                        f"{heading}: option --{option.name} is already {taken[option.name]}'s; ignored"
                    )
                continue
            taken[option.name] = heading
            listed = option.kind is list
            specs.append(
                OptionSpec(
                    option.name,
                    option.help + (" Repeatable; comma-separated in the environment." if listed else ""),
                    str if listed else option.kind,
                    tuple(option.default or ()) if listed else option.default,
                    multiple=listed,
                    scope=scope,
                    env_fallback=option.env_fallback,
                    owner=owner,
                    heading=heading,
                    separator="," if listed else "",
                )
            )
    return specs, warnings


@dataclass(frozen=True)
class Settings:
    """tinklet's settings after flags, environment, config file and defaults are merged."""

    runtime: str = "docker"
    tink: str | None = None
    identifier: str | None = None
    protocol: str = "v2"
    tls: TlsSettings = field(default_factory=TlsSettings)
    loglevel: str = "info"
    log_format: str = "text"
    registries: tuple[RegistryCredentials, ...] = ()
    docker_config: Path | None = None
    pull_policy: PullPolicy = PullPolicy.MISSING
    privilege: Privilege = Privilege.PRIVILEGED
    proxy: ProxySettings = field(default_factory=ProxySettings)
    max_backoff: float = 5.0
    agent_attributes: bool = True
    action_output: str = "log"
    report_grace: float = 3.0
    state_dir: Path | None = None
    plugin_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def options_of(self, owner: str) -> Mapping[str, Any]:
        """The values of the options ``owner`` declared (keys with underscores), and no others."""
        return self.plugin_options.get(owner, {})

    def runtime_settings(self, agent_id: str, owner: str = "", shared_agent: bool = False) -> RuntimeSettings:
        """What a runtime factory (and each action) receives, for this worker's ``agent_id``
        (``shared_agent``: see :attr:`RuntimeSettings.shared_agent`): the options of ``owner``
        (the chosen runtime) only."""
        return RuntimeSettings(
            agent_id=agent_id,
            shared_agent=shared_agent,
            pull_policy=self.pull_policy,
            privilege=self.privilege,
            proxy=self.proxy,
            state_dir=self.state_dir,
            options=self.options_of(owner),
        )


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """True when the environment variable ``name`` is set to a true-ish value."""
    value = (os.environ if environ is None else environ).get(name, "")
    return value.strip().lower() in _TRUE


def child_environment(
    environ: Mapping[str, str] | None = None, proxy: ProxySettings | None = None
) -> dict[str, str]:
    """The environment for a process tinklet starts (a private Podman service): tinklet's own
    ``TINKLET_*`` settings are left out, since they may hold registry logins, and so are the
    launchers' password variables (``REGISTRY_PASSWORD``…); ``proxy``'s variables (both
    spellings) replace the inherited ones."""
    environ = os.environ if environ is None else environ
    kept = {
        key: value
        for key, value in environ.items()
        if not key.startswith(ENV_PREFIX) and key not in SECRET_VARIABLES
    }
    return {**kept, **dict(proxy.environment())} if proxy is not None else kept


def load_settings(
    flags: Mapping[str, Any],
    plugin_specs: Sequence[OptionSpec] = (),
    environ: Mapping[str, str] | None = None,
    core: Sequence[OptionSpec] = CORE_OPTIONS,
) -> Settings:
    """Merge ``flags`` (``None`` = not given), the environment, the config file and defaults.

    ``plugin_specs`` come from :func:`plugin_option_specs`; ``core`` replaces the core's own
    specs (the CLI narrows ``--protocol`` to the installed transports).
    """
    environ = os.environ if environ is None else environ
    extra = list(plugin_specs)
    specs = [*core, *extra]
    flags, repeated = _last_of_repeated(flags, specs)
    config_path = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG")
    file_values = read_config_file(Path(config_path)) if config_path else {}
    known = {key for spec in specs for key in (spec.key, *(a.replace("-", "_") for a in spec.aliases))}
    warnings = repeated + tuple(
        f"{config_path}: unknown setting {key!r} ignored" for key in file_values if key not in known
    )
    values = {spec.key: _resolve(spec, flags, environ, file_values) for spec in specs}
    warnings += registry_warnings(flags, values["registry_file"])
    tls_on, tls_warnings = tls_switch(values, _given("tls", specs, flags, environ, file_values))
    warnings += tls_warnings
    state_dir = _path(values["state_dir"], environ)
    warnings += state_dir_warnings(state_dir)
    return Settings(
        runtime=values["runtime"],
        tink=values["tink"],
        identifier=values["identifier"],
        protocol=values["protocol"],
        tls=TlsSettings(
            enabled=tls_on,
            insecure=values["tls_insecure"] and tls_on,
            **ca_location(values["tls_ca"], lambda value: _path(value, environ)),
            cert_file=_path(values["tls_cert"]),
            key_file=_path(values["tls_key"]),
            server_name=values["tls_server_name"],
        ),
        loglevel=values["loglevel"],
        log_format=values["log_format"],
        registries=registry_logins(flags, environ, file_values, values["registry_file"]),
        docker_config=_path(values["docker_config"], environ),
        pull_policy=PullPolicy(values["pull"]),
        privilege=Privilege(values["action_privilege"]),
        proxy=ProxySettings(
            values["http_proxy"] or "", values["https_proxy"] or "", values["no_proxy"] or ""
        ),
        max_backoff=values["max_backoff"],
        agent_attributes=values["agent_attributes"],
        action_output=values["action_output"],
        report_grace=_report_grace(values["report_grace"]),
        state_dir=state_dir,
        plugin_options=_by_owner(extra, values),
        warnings=warnings,
    )


def _last_of_repeated(
    flags: Mapping[str, Any], specs: Sequence[OptionSpec]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A single-value flag given more than once (the command line hands over every value) keeps
    the last, with a warning naming the flag (never its values)."""
    single = {spec.key: spec for spec in specs if not spec.multiple}
    kept = dict(flags)
    warnings = []
    for key, value in flags.items():
        if key in single and isinstance(value, (list, tuple)):
            if len(value) > 1:
                warnings.append(f"--{single[key].name} was given {len(value)} times; the last one is used")
            kept[key] = value[-1] if value else None
    return kept, tuple(warnings)


def _report_grace(value: float) -> float:
    """``--report-grace``: between 0 and 5 seconds, so that tinklet still exits within 10 s."""
    if not 0 <= value <= MAX_REPORT_GRACE:
        raise ConfigError(f"--report-grace: must be between 0 and {MAX_REPORT_GRACE:g} seconds")
    return value


def _by_owner(specs: Iterable[OptionSpec], values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    owned: dict[str, dict[str, Any]] = {}
    for spec in specs:
        owned.setdefault(spec.owner, {})[spec.key] = values[spec.key]
    return owned


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in a YAML config file, keys normalised to underscores."""
    import yaml  # only when a config file is given: PyYAML costs every start otherwise

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
    env = next((name for name in spec.env_names if name in environ), None)
    in_file = next(
        (key for key in (spec.key, *(a.replace("-", "_") for a in spec.aliases)) if key in file_values), None
    )
    if flag is not None and not (spec.multiple and not flag):
        value, origin = flag, f"--{spec.name}"
    elif env is not None:
        value, origin = _from_env(spec, environ[env]), env
    elif in_file is not None:
        value, origin = file_values[in_file], f"config key {in_file!r}"
    elif fallback := next((n for n in _fallbacks(spec) if n and environ.get(n, "").strip()), ""):
        value, origin = fallback_value(fallback, environ[fallback].strip()), fallback
    else:
        return spec.default
    return _check(spec, value, origin)


def _from_env(spec: OptionSpec, raw: str) -> Any:
    if not spec.multiple:
        return raw
    text = raw.strip()
    if not text:
        return []
    if spec.separator:
        return _split(text, spec.separator)
    try:
        parsed = json.loads(text)
    except ValueError:
        return [text]
    return parsed if isinstance(parsed, list) else [parsed]


def _check(spec: OptionSpec, value: Any, origin: str) -> Any:
    """``value`` converted to the option's kind; errors echo it only when that is safe."""
    if spec.multiple:
        if spec.separator and isinstance(value, str):
            value = _split(value, spec.separator)
        items = value if isinstance(value, (list, tuple)) else [value]
        if spec.separator:  # a plugin's list option: text items
            if any(isinstance(item, (dict, list, tuple)) for item in items):
                raise ConfigError(f"{origin}: expected a list of text values")
            return tuple(str(item) for item in items)
        return tuple(items)
    choices = f"is not one of {', '.join(spec.choices)}"
    try:
        converted = _convert(spec.kind, value)
    except (ValueError, TypeError):
        if spec.choices:
            raise ConfigError(option_error(origin, spec.key, value, choices)) from None
        shown = described_value(spec.key, value)
        raise ConfigError(f"{origin}: expected {spec.kind.__name__}, got {shown}") from None
    if spec.choices and converted not in spec.choices:
        raise ConfigError(option_error(origin, spec.key, value, choices))
    return converted


def _split(text: str, separator: str) -> list[str]:
    return [item.strip() for item in text.split(separator) if item.strip()]


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
    if isinstance(value, (dict, list, tuple)):
        raise ValueError("a text option got a mapping or list")
    return str(value)


def _path(value: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    if not value:
        return None
    if value.startswith("~") and environ is not None and "HOME" in environ:
        return Path(environ["HOME"] + value[1:])
    return Path(value).expanduser()


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
    spec = next(spec for spec in CORE_OPTIONS if spec.key == "registry")
    sources: list[tuple[str, Any]] = []
    if flags.get("registry"):
        sources.append(("--registry", flags["registry"]))
    if registry_file:
        sources.append(("--registry-file", [f"@{registry_file}"]))
    if spec.env in environ:
        sources.append((spec.env, _from_env(spec, environ[spec.env])))
    if file_values.get("registry") is not None:
        sources.append(("config key 'registry'", file_values["registry"]))
    logins: list[RegistryCredentials] = []
    for origin, value in sources:
        for entry in value if isinstance(value, (list, tuple)) else [value]:
            logins.extend(_registry_entries(entry, origin))
    return merge_logins([*logins, *launcher_registry_login(environ)])


def registry_warnings(flags: Mapping[str, Any], registry_file: str | None) -> tuple[str, ...]:
    """Advice about where logins are kept: a command-line password is visible in ``ps``, a login
    file readable by other users is not private."""
    found = []
    entries = flags.get("registry") or ()
    if any(not str(entry).strip().startswith("@") for entry in entries):
        found.append(
            "--registry on the command line is visible to every user of this machine (ps); "
            "prefer --registry-file or --registry @FILE"
        )
    files = [Path(registry_file).expanduser()] if registry_file else []
    files += [
        Path(str(entry).strip()[1:]).expanduser() for entry in entries if str(entry).strip().startswith("@")
    ]
    for path in files:
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                found.append(f"registry login file {path} is readable by other users; chmod 600 it")
    return tuple(found)


def merge_logins(logins: Iterable[RegistryCredentials]) -> tuple[RegistryCredentials, ...]:
    """The first login for each registry (names compared after normalising), in order."""
    merged: dict[str, RegistryCredentials] = {}
    for login in logins:
        merged.setdefault(normalise_registry(login.registry), login)
    return tuple(merged.values())


def _registry_entries(entry: Any, origin: str) -> list[RegistryCredentials]:
    """The logins of one entry: a JSON object, a mapping, or ``@FILE`` (a login or a list)."""
    if isinstance(entry, str) and entry.strip().startswith("@"):
        path = Path(entry.strip()[1:]).expanduser()
        where = f"{origin}: file {described_value('path', str(path))}"
        return [_registry(item, where) for item in read_registry_file(path, where)]
    return [_registry(entry, origin)]


def read_registry_file(path: Path, where: str) -> list[Any]:
    """The entries of a registry login file (JSON or YAML; one login or a list). Never echoed."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{where} is not valid JSON or YAML{line}") from None
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


# --- The launchers' variables (hook-bootkit, the tink agent): see tinklet_core.agent_compat ---


def _fallbacks(spec: OptionSpec) -> tuple[str | None, ...]:
    """The variables read after tinklet's own sources: the option's usual ones (``HTTP_PROXY``),
    then the tink agent's ``AGENT_*`` and hook-bootkit's legacy names."""
    return (spec.env_fallback, *spec.more_fallbacks, *fallback_variables(spec.name))


def _given(
    key: str,
    specs: Sequence[OptionSpec],
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
) -> bool:
    """True when option ``key`` was set by any source (not left at its default)."""
    spec = next(spec for spec in specs if spec.key == key)
    return (
        flags.get(key) is not None
        or any(name in environ for name in spec.env_names)
        or key in file_values
        or any(name and environ.get(name, "").strip() for name in _fallbacks(spec))
    )


def tls_switch(values: Mapping[str, Any], tls_given: bool) -> tuple[bool, tuple[str, ...]]:
    """Whether TLS is on, and the start-up warnings about it. ``--tls-insecure`` turns TLS on
    unless TLS was switched off explicitly (``TINKERBELL_TLS=false``): then it is ignored, as the
    tink agent ignores it, but said so: never a silent plaintext."""
    insecure = bool(values["tls_insecure"])
    enabled = bool(values["tls"]) or (insecure and not tls_given)
    if insecure and not enabled:
        return False, (
            "--tls-insecure (TINKERBELL_INSECURE_TLS) ignored: TLS is switched off "
            "(--no-tls or TINKERBELL_TLS=false), the connection is plaintext",
        )
    if insecure:
        return True, (
            "TLS without verifying the Tink server (--tls-insecure / TINKERBELL_INSECURE_TLS): "
            "tinklet trusts whatever certificate the server presents",
        )
    return enabled, ()
