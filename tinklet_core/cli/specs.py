"""The options of this installation: the core's, each in its ``--help`` panel, and every
plugin's, owned and headed by its plugin."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from tinklet_core.config import CORE_OPTIONS, OptionSpec, plugin_option_specs
from tinklet_core.plugins import LoadedPlugins, server_transport_names

#: The ``--help`` panel of each core option (a test checks that every one has a panel).
CORE_PANELS: dict[str, str] = {
    **dict.fromkeys(("tink", "identifier", "protocol", "max-backoff", "agent-attributes", "report-grace"),
                    "Tink server"),
    **dict.fromkeys(("tls", "tls-ca", "tls-cert", "tls-key", "tls-server-name", "tls-insecure"),
                    "TLS to the Tink server"),
    **dict.fromkeys(("registry", "registry-file", "docker-config", "pull"), "Images and registry logins"),
    **dict.fromkeys(("runtime", "action-privilege", "action-output", "state-dir"), "Actions"),
    **dict.fromkeys(("loglevel", "log-format"), "Logging"),
    **dict.fromkeys(("http-proxy", "https-proxy", "no-proxy"), "Proxy"),
    "config": "Configuration file",
}  # fmt: skip


#: The panels in the order ``--help`` shows them.
PANEL_ORDER: tuple[str, ...] = tuple(dict.fromkeys(CORE_PANELS[name] for name in (
    "tink", "tls", "runtime", "registry", "loglevel", "http-proxy", "config"
)))  # fmt: skip


def in_panel_order(specs: Sequence[OptionSpec]) -> list[OptionSpec]:
    """Core options ordered by their panel (stable within one), others after them as they are."""
    rank = {title: index for index, title in enumerate(PANEL_ORDER)}
    last = len(rank)
    return sorted(specs, key=lambda spec: rank.get(spec.heading, last) if spec.owner == "core" else last)


def core_panel(spec: OptionSpec) -> str:
    """The ``--help`` panel of a core option (``Options`` for one not placed yet)."""
    return CORE_PANELS.get(spec.name, spec.heading)


def option_specs(loaded: LoadedPlugins) -> tuple[list[OptionSpec], list[OptionSpec], list[str]]:
    """The core's options (``--protocol`` narrowed to the installed transports) and every
    plugin's, each owned and headed by its plugin, with warnings about refused names."""
    protocols = tuple(server_transport_names(loaded))
    default = (
        "auto" if "auto" in protocols else ("v2" if "v2" in protocols or not protocols else protocols[0])
    )
    core = [
        dataclasses.replace(spec, choices=protocols, default=default) if spec.name == "protocol" else spec
        for spec in CORE_OPTIONS
    ]
    core = [dataclasses.replace(spec, heading=core_panel(spec)) for spec in core]
    groups: list[tuple[str, str, Sequence[Any], str]] = []
    seen: list[object] = []
    provided_specs = (
        ("runtime", "Runtime", "common", loaded.runtimes.values()),
        ("transport", "Transport", "worker", loaded.transports.values()),
    )
    for kind, title, scope, provided in provided_specs:
        for entry in provided:
            if entry.spec in seen:  # one spec registered under several names gets one panel
                continue
            seen.append(entry.spec)
            heading = f"{title} {entry.spec.name} ({origin(loaded, entry.plugin)})"
            groups.append((f"{kind}:{entry.spec.name}", heading, entry.spec.options, scope))
    for plugin, options in loaded.options.items():
        groups.append((plugin, f"Plugin {origin(loaded, plugin)}", options, "common"))
    specs, warnings = plugin_option_specs(groups)
    return core, specs, warnings


def origin(loaded: LoadedPlugins, plugin: str) -> str:
    dist, _version = loaded.distributions.get(plugin, ("", ""))
    return dist if dist and dist != plugin else plugin

