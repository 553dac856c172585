"""Reading tinklet's settings, once, in one place.

Every option (the core's and each plugin's) is described once as an :class:`OptionSpec` and is
then available as a flag ``--NAME``, an environment variable ``TINKLET_NAME`` and a key ``name``
in the YAML config file. Precedence: flags > environment > config file > defaults. Each option
has an *owner*: ``core``, or the plugin (runtime, transport) that declared it; a plugin's values
are kept apart (:attr:`Settings.plugin_options`) and handed only to their owner. This module is
the only one that reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinklet_core.agent_compat import SECRET_VARIABLES, fallback_value, fallback_variables
from tinklet_core.errors import ConfigError
from tinklet_core.model import RegistryCredentials
from tinklet_core.option_specs import (
    CORE,
    CORE_OPTIONS,
    ENV_PREFIX,
    OptionSpec,
    plugin_option_specs,
    split_list,
    value_from_env,
)
from tinklet_core.proxy import ProxySettings
from tinklet_core.redaction import described_value, has_url_password, option_error
from tinklet_core.registry_logins import (
    merge_logins,
    read_registry_file,
    registry_logins,
    registry_warnings,
)
from tinklet_core.runtime import Privilege, PullPolicy, RuntimeSettings
from tinklet_core.state_dir import state_dir_warnings
from tinklet_core.tls import TlsSettings, ca_location
from tinklet_core.yaml_files import read_yaml_file

__all__ = [  # the public names plugins and the README use, wherever they now live
    "CORE",
    "CORE_OPTIONS",
    "ENV_PREFIX",
    "MAX_REPORT_GRACE",
    "OptionSpec",
    "Settings",
    "child_environment",
    "env_flag",
    "load_settings",
    "merge_logins",
    "plugin_option_specs",
    "read_config_file",
    "read_registry_file",
    "registry_logins",
    "registry_warnings",
    "tls_switch",
]

MAX_REPORT_GRACE = 5.0
"""The longest --report-grace: with it and the container's stop, tinklet exits within 10 s."""
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


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
        f"{described_value('config', config_path, path=True)}: unknown setting "
        f"{described_value('setting', key)} ignored"
        for key in file_values
        if key not in known
    )
    values = {spec.key: _resolve(spec, flags, environ, file_values) for spec in specs}
    warnings += registry_warnings(flags, values["registry_file"], environ, file_values)
    warnings += proxy_warnings(flags)
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


def proxy_warnings(flags: Mapping[str, Any]) -> tuple[str, ...]:
    """A proxy password on the command line is visible in ``ps``: said so, as for ``--registry``
    (the password itself is never named)."""
    found = []
    for name, variable in (("http-proxy", "HTTP_PROXY"), ("https-proxy", "HTTPS_PROXY")):
        value = flags.get(name.replace("-", "_"))
        if isinstance(value, str) and has_url_password(value):
            found.append(
                f"--{name} on the command line holds a password visible to every user of this "
                f"machine (ps); prefer {variable} in the environment or the config file"
            )
    return tuple(found)


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
    shown = described_value("config", str(path), path=True)
    data = read_yaml_file(
        path, ConfigError, f"cannot read config file {shown}", f"config file {shown} is not valid YAML"
    )
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {shown} must be a mapping of option names to values")
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
        value, origin = value_from_env(spec, environ[env]), env
    elif in_file is not None:
        value, origin = file_values[in_file], f"config key {in_file!r}"
    elif fallback := next((n for n in _fallbacks(spec) if n and environ.get(n, "").strip()), ""):
        value, origin = fallback_value(fallback, environ[fallback].strip()), fallback
    else:
        return spec.default
    return _check(spec, value, origin)


def _check(spec: OptionSpec, value: Any, origin: str) -> Any:
    """``value`` converted to the option's kind; errors echo it only when that is safe."""
    if spec.multiple:
        if spec.separator and isinstance(value, str):
            value = split_list(value, spec.separator)
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
