"""Every plugin the core ships, listed once.

Each is registered under its name like any plugin, so ``-p no:NAME`` blocks it and ``tinklet
plugins list`` shows it. The transports are made at load time (:data:`BUILTIN_TRANSPORTS`), the
registry and TLS plugins once settings are read, ``core-progress`` only by ``tinklet run`` on a
terminal; :func:`tinklet_core.plugins.register_builtin` refuses a name that is not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinklet_core.transports.builtin import BUILTIN_TRANSPORTS


@dataclass(frozen=True)
class BuiltinPlugin:
    """One of the core's own plugins: its name and what it does."""

    name: str
    summary: str


BUILTIN_PLUGINS: tuple[BuiltinPlugin, ...] = (
    *(
        BuiltinPlugin(name, f"the {spec.name!r} transport: {spec.summary}")
        for name, spec in BUILTIN_TRANSPORTS
    ),
    BuiltinPlugin("core-registry", "registry logins from --registry, --registry-file and the docker config"),
    BuiltinPlugin("core-tls", "channel credentials for TLS to the Tink server"),
    BuiltinPlugin("core-progress", "the live progress lines of 'tinklet run' on a terminal"),
)

BUILTIN_NAMES: frozenset[str] = frozenset(plugin.name for plugin in BUILTIN_PLUGINS)
