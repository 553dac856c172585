"""Finding, loading, listing and choosing plugins.

Plugins are entry points in the ``tinklet`` group. Like pytest: ``-p no:NAME`` blocks one, and
auto-loading can be switched off entirely (``TINKLET_DISABLE_PLUGIN_AUTOLOAD``), which is the
way out when a broken plugin stops tinklet from starting. Loading never lets one plugin stop
tinklet: a plugin that fails to import, whose start-up hook raises, that claims a name another
plugin has, or that implements an unknown hook becomes a *failure*, a one-line warning naming the
plugin and its distribution (and an entry in ``tinklet plugins list --json``). Only asking for
something that cannot be had (an unknown or disputed runtime, a ``-p MODULE`` that does not
import) is an error.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from typing import Any

import pluggy

from tinklet_core import hookspecs, installed
from tinklet_core.builtins import BUILTIN_NAMES
from tinklet_core.errors import PluginError
from tinklet_core.loaded_plugins import CONFIGURED_PREFIX as CONFIGURED_PREFIX
from tinklet_core.loaded_plugins import RUNTIME_PREFIX as RUNTIME_PREFIX
from tinklet_core.loaded_plugins import LoadedPlugins as LoadedPlugins
from tinklet_core.loaded_plugins import Provided as Provided
from tinklet_core.loaded_plugins import SpecT
from tinklet_core.options import PluginOption
from tinklet_core.plugin_calls import error_line
from tinklet_core.plugin_reports import PluginInfo as PluginInfo
from tinklet_core.plugin_reports import describe_plugins as describe_plugins
from tinklet_core.plugin_reports import factory_hooks as factory_hooks
from tinklet_core.runtime import Runtime, RuntimeSettings, RuntimeSpec
from tinklet_core.transports.builtin import BUILTIN_TRANSPORTS, BuiltinTransport
from tinklet_core.transports.spec import TransportSpec

# LoadedPlugins, Provided and the name prefixes (what loading found) live in loaded_plugins,
# PluginInfo, describe_plugins and factory_hooks (what ``plugins list`` shows) in plugin_reports;
# the ``X as X`` imports above keep them importable from here, where callers have found them.

ENTRY_POINT_GROUP = "tinklet"


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows tinklet's hookspecs and nothing else."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def load_plugins(
    *,
    autoload: bool = True,
    blocked: Iterable[str] = (),
    extra: Iterable[str] = (),
    objects: Iterable[tuple[str, object]] = (),
) -> LoadedPlugins:
    """Register the core's built-in transports, the modules named in ``extra`` and, unless
    ``autoload`` is off, every ``tinklet`` entry point; then collect what they provide.

    ``blocked`` names plugins that must not be registered. ``extra`` is how ``-p MODULE`` and
    ``TINKLET_PLUGINS`` load a plugin that is not installed as a distribution (a plugin under
    development, a test runtime); one that does not import is a :class:`PluginError`.
    ``objects`` are ``(name, plugin object)`` pairs registered after those modules (the test
    kit's way to load a plugin made in a test).
    """
    manager = new_plugin_manager()
    loaded = LoadedPlugins(manager, blocked=tuple(blocked))
    for name in loaded.blocked:
        manager.set_blocked(name)
    known = set(BUILTIN_NAMES)
    for name, spec in BUILTIN_TRANSPORTS:
        register_builtin(loaded, BuiltinTransport(spec), name)
    for module_name in extra:
        known.add(module_name)
        if manager.is_blocked(module_name) or manager.has_plugin(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise PluginError(
                f"-p {module_name}: cannot import the plugin module: {error_line(exc)}"
            ) from None
        loaded.distributions[module_name] = ("", "")
        _register(loaded, module, module_name)
    for name, plugin in objects:
        known.add(name)
        if not manager.is_blocked(name):
            _register(loaded, plugin, name)
    if autoload:
        for entry_point in installed.entry_points(ENTRY_POINT_GROUP):  # importlib.metadata, cheaper
            known.add(entry_point.name)
            if manager.is_blocked(entry_point.name) or manager.has_plugin(entry_point.name):
                continue
            dist = entry_point.dist
            loaded.distributions[entry_point.name] = (dist.name, dist.version) if dist else ("", "")
            try:
                plugin = entry_point.load()
            except Exception as exc:  # a broken third-party plugin must not stop tinklet
                loaded.failures.append(f"{loaded.origin(entry_point.name)} failed to load: {error_line(exc)}")
                continue
            _register(loaded, plugin, entry_point.name)
    for name in loaded.blocked:
        if name not in known:
            loaded.failures.append(f"-p no:{name}: no plugin is called {name!r}; nothing was blocked")
    _collect(loaded)
    return loaded


def _register(loaded: LoadedPlugins, plugin: object, name: str) -> None:
    try:
        loaded.manager.register(plugin, name=name)
    except Exception as exc:  # pluggy refuses bad hook signatures
        loaded.failures.append(f"{loaded.origin(name)} was not loaded: {error_line(exc)}")
        return
    for hook in unknown_hooks(loaded.manager, plugin):
        loaded.failures.append(
            f"{loaded.origin(name)} implements {hook!r}, which is not a tinklet hook; it is never called"
        )


def unknown_hooks(manager: pluggy.PluginManager, plugin: object) -> list[str]:
    """The hooks ``plugin`` implements that tinklet does not define (misspellings)."""
    return sorted(
        caller.name
        for caller in manager.get_hookcallers(plugin) or ()
        if not caller.has_spec()
        and not all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin)
    )


def _call_each(loaded: LoadedPlugins, hook: str) -> Iterable[tuple[str, list[Any]]]:
    """Call a start-up hook on each plugin on its own (through pluggy), so a plugin that raises
    (or returns something that is not a list) is reported by name and skipped rather than
    stopping tinklet. Returns ``(plugin name, result)`` in pluggy's call order."""
    for plugin, call in loaded.calls.each(hook):
        try:
            result = call()
        except Exception as exc:
            loaded.failures.append(f"{loaded.origin(plugin)}: {hook}() raised {error_line(exc)}")
            continue
        if result is None:
            continue
        if not isinstance(result, (list, tuple)):
            loaded.failures.append(
                f"{loaded.origin(plugin)}: {hook}() returned {type(result).__name__}, not a list"
            )
            continue
        yield plugin, list(result)


def _collect(loaded: LoadedPlugins) -> None:
    for plugin, specs in _call_each(loaded, "tinklet_runtimes"):
        _add_specs(loaded, plugin, specs, RuntimeSpec, loaded.runtimes, "runtime")
    for plugin, specs in _call_each(loaded, "tinklet_transports"):
        _add_specs(loaded, plugin, specs, TransportSpec, loaded.transports, "transport")
    for plugin, options in _call_each(loaded, "tinklet_options"):
        good = tuple(option for option in options if isinstance(option, PluginOption))
        if len(good) != len(options):
            loaded.failures.append(
                f"{loaded.origin(plugin)}: tinklet_options() must return PluginOption records"
            )
        loaded.options[plugin] = good


def _add_specs(
    loaded: LoadedPlugins,
    plugin: str,
    specs: list[Any],
    kind: type[SpecT],
    found: dict[str, Provided[SpecT]],
    what: str,
) -> None:
    for spec in specs:
        if not isinstance(spec, kind):
            loaded.failures.append(
                f"{loaded.origin(plugin)}: tinklet_{what}s() returned {type(spec).__name__}, "
                f"not a {kind.__name__}"
            )
            continue
        typed: SpecT = spec
        for name in (typed.name, *typed.aliases):
            previous = found.get(name)
            if previous is None or previous.spec is typed:
                found[name] = Provided(plugin, typed)
                continue
            message = (
                f"{what} {name!r} is provided by both {loaded.origin(previous.plugin)} and "
                f"{loaded.origin(plugin)}; block one with -p no:NAME"
            )
            loaded.disputed[f"{what}:{name}"] = message
            loaded.failures.append(message)


def runtime_specs(manager: pluggy.PluginManager) -> dict[str, tuple[str, RuntimeSpec]]:
    """Every runtime the plugins registered with ``manager`` provide, by name and alias, with
    the plugin's name (for callers that hold only a manager). Failures are not reported here."""
    loaded = LoadedPlugins(manager)
    for plugin, specs in _call_each(loaded, "tinklet_runtimes"):
        _add_specs(loaded, plugin, specs, RuntimeSpec, loaded.runtimes, "runtime")
    return {name: (provided.plugin, provided.spec) for name, provided in loaded.runtimes.items()}


def find_runtime(loaded: LoadedPlugins | pluggy.PluginManager, name: str) -> RuntimeSpec:
    """The runtime called ``name`` (or an alias of it).

    A name two plugins claim, or one no plugin provides, is a :class:`PluginError` that lists
    the installed runtimes and the blocked plugins.
    """
    if isinstance(loaded, pluggy.PluginManager):
        loaded = _recollect(loaded)
    return _find(loaded, name, loaded.runtimes, "runtime", "install tinklet-docker, for example")


def find_transport(loaded: LoadedPlugins, name: str) -> TransportSpec:
    """The transport called ``name`` (``--protocol``), like :func:`find_runtime`."""
    return _find(loaded, name, loaded.transports, "transport", "every built-in transport is blocked")


def _recollect(manager: pluggy.PluginManager) -> LoadedPlugins:
    loaded = LoadedPlugins(manager)
    _collect(loaded)
    return loaded


def _find(loaded: LoadedPlugins, name: str, found: dict[str, Provided[SpecT]], what: str, hint: str) -> SpecT:
    if f"{what}:{name}" in loaded.disputed:
        raise PluginError(loaded.disputed[f"{what}:{name}"])
    if name in found:
        return found[name].spec
    installed = sorted({provided.spec.name for provided in found.values()})
    choices = ", ".join(installed) if installed else f"none ({hint})"
    message = f"unknown {what} {name!r}; installed {what}s: {choices}"
    if name in loaded.blocked:
        message = f"{what} {name!r} is not available: plugin {name!r} is blocked with -p no:{name}"
    elif loaded.blocked:
        message += f" (blocked plugins: {', '.join(loaded.blocked)})"
    raise PluginError(message)


def server_transport_names(loaded: LoadedPlugins) -> list[str]:
    """Names and aliases of the transports ``--protocol`` can choose (all but ``file``)."""
    from tinklet_core.transports.builtin import FILE_TRANSPORT

    return sorted(
        name for name, provided in loaded.transports.items() if provided.spec.name != FILE_TRANSPORT
    )


def register_builtin(loaded: LoadedPlugins, plugin: object, name: str) -> bool:
    """Register one of the core's own plugins (listed in :data:`~tinklet_core.builtins.BUILTIN_PLUGINS`)
    unless the user blocked it (``-p no:NAME``); True when it was registered."""
    if name not in BUILTIN_NAMES:
        raise ValueError(f"{name!r} is not listed in tinklet_core.builtins.BUILTIN_PLUGINS")
    if loaded.manager.is_blocked(name) or loaded.manager.has_plugin(name):
        return False
    loaded.manager.register(plugin, name=name)
    loaded.distributions[name] = ("tinklet", _version_of("tinklet"))
    return True


@functools.cache  # every built-in asks for tinklet's: one metadata lookup
def _version_of(distribution: str) -> str:
    return installed.version(distribution) or "unknown"


def open_runtime(manager: pluggy.PluginManager, spec: RuntimeSpec, settings: RuntimeSettings) -> Runtime:
    """Build the chosen runtime and register it, so its hook methods run for every action."""
    runtime = spec.factory(settings)
    manager.register(runtime, name=f"{RUNTIME_PREFIX}{spec.name}")
    return runtime
