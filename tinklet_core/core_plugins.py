"""The core's own hook implementations, registered like any plugin's (and so blockable).

Kept apart from :mod:`tinklet_core.app` because every command registers them, ``tinklet plugins
list`` too (it lists them), while only a worker or ``tinklet run`` needs the application's
modules (the worker loop, the transports, the engine wait).
"""

from __future__ import annotations

from tinklet_core.config import Settings
from tinklet_core.plugins import LoadedPlugins, register_builtin
from tinklet_core.registry_auth import ConfiguredRegistryCredentials
from tinklet_core.tls import CoreChannelCredentials


def register_core_plugins(loaded: LoadedPlugins, settings: Settings) -> None:
    """The core's registry logins (``core-registry``) and TLS transport (``core-tls``), each
    blockable with ``-p no:NAME``."""
    register_builtin(
        loaded, ConfiguredRegistryCredentials(settings.registries, settings.docker_config), "core-registry"
    )
    register_builtin(loaded, CoreChannelCredentials(), "core-tls")
