"""What ``tinklet plugins list`` shows: each loaded plugin with its distribution, version,
runtimes, transports, options and hooks, read without opening a runtime or calling a factory."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from tinklet_core import hookspecs
from tinklet_core.loaded_plugins import RUNTIME_PREFIX, LoadedPlugins, SpecT

_IMPL_MARKER = f"{hookspecs.PROJECT}_impl"


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin as ``tinklet plugins list`` shows it."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    runtimes: tuple[str, ...]
    transports: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def describe_plugins(
    loaded: LoadedPlugins, accepted: Collection[tuple[str, str]] | None = None
) -> list[PluginInfo]:
    """The loaded plugins with distribution, version, runtimes, transports, options and hooks.

    A runtime's hooks are read from its factory class (or a function factory's annotated return
    type) without opening it, and the hooks of the object ``tinklet_configure`` returns from that
    function's return annotation without calling it, so listing never connects to a daemon,
    starts an exporter or imports a heavy client. ``accepted`` holds the ``(owner, option name)``
    pairs that became flags: options refused as clashes are left out.
    """
    manager = loaded.manager
    infos = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None or name.startswith(RUNTIME_PREFIX):
            continue
        runtimes = _unique(p.spec for p in loaded.runtimes.values() if p.plugin == name)
        transports = _unique(p.spec for p in loaded.transports.values() if p.plugin == name)
        hooks = {caller.name for caller in manager.get_hookcallers(plugin) or ()}
        for spec in runtimes:
            hooks |= set(factory_hooks(spec.factory))
        configure = getattr(plugin, "tinklet_configure", None)
        if "tinklet_configure" in hooks and configure is not None:
            hooks |= set(factory_hooks(configure))
        owned = [
            *((name, option) for option in loaded.options.get(name, ())),
            *((f"runtime:{spec.name}", option) for spec in runtimes for option in spec.options),
            *((f"transport:{spec.name}", option) for spec in transports for option in spec.options),
        ]
        options = [option for owner, option in owned if accepted is None or (owner, option.name) in accepted]
        dist, version = loaded.distributions.get(name, ("", ""))
        infos.append(
            PluginInfo(
                name=name,
                distribution=dist,
                version=version,
                hooks=tuple(sorted(hooks)),
                runtimes=tuple(spec.name for spec in runtimes),
                transports=tuple(spec.name for spec in transports),
                options=tuple(f"--{option.name}" for option in options),
            )
        )
    return infos


def _unique(specs: Iterable[SpecT]) -> list[SpecT]:
    unique: list[SpecT] = []
    for spec in specs:
        if spec not in unique:
            unique.append(spec)
    return unique


def factory_hooks(factory: object) -> list[str]:
    """The hooks a runtime factory's objects (or what a ``tinklet_configure`` returns) implement:
    read from the class, from a function's return annotation (``Exporter | None`` too), or the
    hooks a :class:`~tinklet_core.lazy_factory.LazyFactory` declares. Never calls the factory."""
    if isinstance(declared := getattr(factory, "hooks", None), tuple):
        return sorted(declared)
    if inspect.isclass(factory):
        classes = [factory]
    else:
        try:
            returned = typing.get_type_hints(factory).get("return")
        except Exception:  # an annotation that cannot be resolved: nothing to show
            return []
        classes = [c for c in (typing.get_args(returned) or (returned,)) if inspect.isclass(c)]
    return sorted(
        {
            name
            for cls in classes
            for name, member in inspect.getmembers(cls)
            if name.startswith(f"{hookspecs.PROJECT}_") and hasattr(member, _IMPL_MARKER)
        }
    )
