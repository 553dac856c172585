"""Finding, loading, listing and choosing plugins.

Plugins are entry points in the ``tinklet`` group. Like pytest: ``-p no:NAME`` blocks one, and
auto-loading can be switched off entirely (``TINKLET_DISABLE_PLUGIN_AUTOLOAD``), which is the
way out when a broken plugin stops tinklet from starting. A plugin that fails to import is
reported, not fatal.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import pluggy

from tinklet_core import hookspecs
from tinklet_core.errors import PluginError
from tinklet_core.runtime import Runtime, RuntimeSettings, RuntimeSpec

ENTRY_POINT_GROUP = "tinklet"
_IMPL_MARKER = f"{hookspecs.PROJECT}_impl"


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin as ``tinklet plugins list`` shows it."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    runtimes: tuple[str, ...]


@dataclass
class LoadedPlugins:
    """The plugin manager with what loading found: plugin origins and the failures."""

    manager: pluggy.PluginManager
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows tinklet's hookspecs and nothing else."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def load_plugins(
    *, autoload: bool = True, blocked: Iterable[str] = (), extra: Iterable[str] = ()
) -> LoadedPlugins:
    """Register the modules named in ``extra`` and, unless ``autoload`` is off, every
    ``tinklet`` entry point. ``blocked`` names plugins that must not be registered.

    ``extra`` is how ``-p MODULE`` and ``TINKLET_PLUGINS`` load a plugin that is not installed
    as a distribution (a plugin under development, a test runtime).
    """
    manager = new_plugin_manager()
    loaded = LoadedPlugins(manager)
    for name in blocked:
        manager.set_blocked(name)
    for module_name in extra:
        if manager.is_blocked(module_name) or manager.has_plugin(module_name):
            continue
        try:
            manager.register(importlib.import_module(module_name), name=module_name)
        except ImportError as exc:
            raise PluginError(f"cannot load plugin module {module_name!r}: {exc}") from None
        loaded.distributions[module_name] = ("", "")
    if not autoload:
        return loaded
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if manager.is_blocked(entry_point.name) or manager.has_plugin(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=entry_point.name)
        except Exception as exc:  # a broken third-party plugin must not stop tinklet
            loaded.failures.append(f"plugin {entry_point.name!r} failed to load: {exc}")
            continue
        dist = entry_point.dist
        if dist is not None:
            loaded.distributions[entry_point.name] = (dist.name, dist.version)
    return loaded


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def runtime_specs(manager: pluggy.PluginManager) -> dict[str, tuple[str, RuntimeSpec]]:
    """Every runtime the loaded plugins provide, by name and alias, with the plugin's name.

    Two plugins claiming one name is an error naming both.
    """
    found: dict[str, tuple[str, RuntimeSpec]] = {}
    for impl in manager.hook.tinklet_runtimes.get_hookimpls():
        specs = cast("list[RuntimeSpec]", impl.function() or [])
        for spec in specs:
            for name in (spec.name, *spec.aliases):
                if name in found and found[name][1] is not spec:
                    raise PluginError(
                        f"runtime {name!r} is provided by both {found[name][0]!r} and "
                        f"{impl.plugin_name!r}; block one with -p no:NAME"
                    )
                found[name] = (impl.plugin_name, spec)
    return found


def find_runtime(manager: pluggy.PluginManager, name: str) -> RuntimeSpec:
    """The runtime called ``name`` (or an alias of it); an unknown name lists the installed ones."""
    specs = runtime_specs(manager)
    if name in specs:
        return specs[name][1]
    installed = sorted({spec.name for _plugin, spec in specs.values()})
    choices = ", ".join(installed) if installed else "none (install tinklet-docker, for example)"
    raise PluginError(f"unknown runtime {name!r}; installed runtimes: {choices}")


def register_builtin(loaded: LoadedPlugins, plugin: object, name: str) -> None:
    """Register one of the core's own plugins unless the user blocked it (``-p no:NAME``)."""
    if loaded.manager.is_blocked(name) or loaded.manager.has_plugin(name):
        return
    loaded.manager.register(plugin, name=name)
    loaded.distributions[name] = ("tinklet", _version_of("tinklet"))


def open_runtime(manager: pluggy.PluginManager, spec: RuntimeSpec, settings: RuntimeSettings) -> Runtime:
    """Build the chosen runtime and register it, so its hook methods run for every action."""
    runtime = spec.factory(settings)
    manager.register(runtime, name=f"runtime:{spec.name}")
    return runtime


def describe_plugins(loaded: LoadedPlugins) -> list[PluginInfo]:
    """The loaded plugins with distribution, version, runtimes and implemented hooks.

    A runtime's hooks are read from its factory class without opening it, so listing never
    connects to a daemon or imports a heavy client.
    """
    manager = loaded.manager
    runtimes_by_plugin: dict[str, list[RuntimeSpec]] = {}
    for plugin_name, spec in runtime_specs(manager).values():
        specs = runtimes_by_plugin.setdefault(plugin_name, [])
        if spec not in specs:
            specs.append(spec)
    infos = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None or name.startswith("runtime:"):
            continue
        hooks = {caller.name for caller in manager.get_hookcallers(plugin) or ()}
        for spec in runtimes_by_plugin.get(name, ()):
            hooks |= set(_class_hooks(spec.factory))
        dist, version = loaded.distributions.get(name, ("", ""))
        infos.append(
            PluginInfo(
                name=name,
                distribution=dist,
                version=version,
                hooks=tuple(sorted(hooks)),
                runtimes=tuple(spec.name for spec in runtimes_by_plugin.get(name, ())),
            )
        )
    return infos


def _class_hooks(factory: object) -> list[str]:
    if not inspect.isclass(factory):
        return []
    return [
        name
        for name, member in inspect.getmembers(factory)
        if name.startswith(f"{hookspecs.PROJECT}_") and hasattr(member, _IMPL_MARKER)
    ]
