"""The options tinklet has: the core's, described once each, and plugins' turned into the same
form. Each :class:`OptionSpec` is a flag ``--NAME``, a variable ``TINKLET_NAME`` and a config key
``name``; :mod:`tinklet_core.config` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tinklet_core.options import PluginOption
from tinklet_core.runtime import Privilege, PullPolicy

ENV_PREFIX = "TINKLET_"
CORE = "core"


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


def value_from_env(spec: OptionSpec, raw: str) -> Any:
    """The value of ``spec`` in an environment variable: text, or for a multiple option a list
    (split on its separator, else parsed as JSON; text that is not JSON is one item)."""
    if not spec.multiple:
        return raw
    text = raw.strip()
    if not text:
        return []
    if spec.separator:
        return split_list(text, spec.separator)
    try:
        parsed = json.loads(text)
    except ValueError:
        return [text]
    return parsed if isinstance(parsed, list) else [parsed]


def split_list(text: str, separator: str) -> list[str]:
    """The non-empty, stripped items of ``text`` split on ``separator``."""
    return [item.strip() for item in text.split(separator) if item.strip()]
