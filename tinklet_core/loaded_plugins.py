"""What loading plugins found: the plugin manager, each runtime and transport name with the
plugin that provides it, each plugin's distribution, options and loading failures.

:mod:`tinklet_core.plugins` fills it in; the host (:mod:`tinklet_core.app`, the command line)
reads it; :mod:`tinklet_core.plugin_reports` describes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import pluggy

from tinklet_core.options import PluginOption
from tinklet_core.plugin_calls import PluginCalls
from tinklet_core.runtime import RuntimeSpec
from tinklet_core.transports.spec import TransportSpec

RUNTIME_PREFIX = "runtime:"
"""The plugin name an opened runtime is registered under: ``runtime:NAME``."""
CONFIGURED_PREFIX = "configured:"
"""The plugin name of an object a ``tinklet_configure`` returned: ``configured:NAME``."""
SpecT = TypeVar("SpecT", RuntimeSpec, TransportSpec)


@dataclass(frozen=True)
class Provided(Generic[SpecT]):
    """A runtime or transport spec with the plugin that provides it."""

    plugin: str
    spec: SpecT


@dataclass
class LoadedPlugins:
    """The plugin manager with what loading found.

    ``runtimes`` and ``transports`` map every name and alias to its provider; ``disputed`` maps
    a name two plugins claim to the message that explains it; ``options`` lists each plugin's
    own options (``tinklet_options``); ``failures`` are one-line warnings, each naming a plugin.
    """

    manager: pluggy.PluginManager
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    blocked: tuple[str, ...] = ()
    runtimes: dict[str, Provided[RuntimeSpec]] = field(default_factory=dict)
    transports: dict[str, Provided[TransportSpec]] = field(default_factory=dict)
    disputed: dict[str, str] = field(default_factory=dict)
    options: dict[str, tuple[PluginOption, ...]] = field(default_factory=dict)
    calls: PluginCalls = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.calls = PluginCalls(self.manager)

    def origin(self, plugin: str) -> str:
        """``plugin 'NAME' (distribution DIST VERSION)``: how messages name a plugin. An opened
        runtime (``runtime:NAME``) and an object ``tinklet_configure`` returned
        (``configured:NAME``) are named by the plugin they came from."""
        owner = plugin
        if plugin.startswith(CONFIGURED_PREFIX):
            owner = plugin[len(CONFIGURED_PREFIX) :]
        elif plugin.startswith(RUNTIME_PREFIX) and plugin[len(RUNTIME_PREFIX) :] in self.runtimes:
            owner = self.runtimes[plugin[len(RUNTIME_PREFIX) :]].plugin
        dist, version = self.distributions.get(owner, ("", ""))
        where = f" (distribution {dist} {version})" if dist else ""
        return f"plugin {owner!r}{where}"
