"""Calling plugins one at a time, through pluggy, so a failure is pinned on the plugin that made it.

pluggy calls every implementation of a hook in one go: the first that raises stops the others,
and the error does not say whose it was. The core calls its hooks through :class:`PluginCalls`
instead, one plugin at a time and still through pluggy (so an implementation may take only the
arguments it uses), and turns what a plugin got wrong into a :class:`PluginFault` naming it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pluggy

from tinklet_core import hookspecs
from tinklet_core.errors import TinkletError

Origin = Callable[[str], str]
"""How messages name a plugin: ``plugin 'NAME' (distribution DIST VERSION)``."""


class PluginFault(TinkletError):
    """A plugin raised where it must not, or returned something of the wrong type.

    ``str()`` names the plugin (and its distribution) and says what it did; the worker fails
    the action with it and goes on.
    """


def plain_origin(plugin: str) -> str:
    """How a plugin is named when its distribution is not known."""
    return f"plugin {plugin!r}"


def error_line(exc: BaseException) -> str:
    """``TypeName: message`` on one line (the message's whitespace collapsed)."""
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


class PluginCalls:
    """Calls the implementations of a hook one plugin at a time, each through pluggy.

    pluggy's own subset callers cannot serve: they hash plugin objects, and a plugin may be an
    unhashable dataclass. So each implementation gets, once, a small plugin manager of its own
    holding a stand-in plugin that carries that one implementation, and pluggy calls it from
    there (choosing the arguments it takes). Stand-ins are made when first needed and kept
    while the implementation stays registered.
    """

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self._manager = manager
        self._callers: dict[int, tuple[Any, Callable[..., Any]]] = {}
        self._lock = threading.Lock()

    def each(self, hook: str) -> Iterator[tuple[str, Callable[..., Any]]]:
        """``(plugin name, caller)`` for each plugin that implements ``hook``, in pluggy's call
        order (``tryfirst`` first, then the most recently registered first). Each caller takes
        the hook's arguments by name and returns that one plugin's answer. Hook wrappers do not
        run here (only ``tinklet_execute_action`` has wrappers; see
        :mod:`tinklet_core.execution`)."""
        impls = getattr(self._manager.hook, hook).get_hookimpls()
        for impl in reversed(impls):
            if impl.wrapper or impl.hookwrapper:
                continue
            yield impl.plugin_name, self._caller(hook, impl)

    def call_each(
        self, hook: str, arguments: dict[str, Any], on_error: Callable[[str, BaseException], None]
    ) -> list[tuple[str, Any]]:
        """Call ``hook`` on each implementing plugin with ``arguments``; a plugin that raises is
        reported to ``on_error(plugin, exc)`` and the others are still called. Returns the
        ``(plugin, result)`` pairs of the plugins that answered (``None`` results left out)."""
        answers = []
        for plugin, call in self.each(hook):
            try:
                result = call(**arguments)
            except Exception as exc:
                on_error(plugin, exc)
                continue
            if result is not None:
                answers.append((plugin, result))
        return answers

    def _caller(self, hook: str, impl: Any) -> Callable[..., Any]:
        with self._lock:  # the worker's thread and the observers' share this
            return self._find_or_make(hook, impl)

    def _find_or_make(self, hook: str, impl: Any) -> Callable[..., Any]:
        known = self._callers.get(id(impl))
        if known is not None and known[0] is impl:
            return known[1]
        for key in [key for key, (held, _) in self._callers.items() if not self._registered(held)]:
            del self._callers[key]
        own = pluggy.PluginManager(hookspecs.PROJECT)
        own.add_hookspecs(hookspecs)
        stand_in = _StandIn()
        setattr(stand_in, hook, impl.function)
        own.register(stand_in, name=impl.plugin_name)
        caller = getattr(own.hook, hook)
        first_result = bool(caller.spec and caller.spec.opts.get("firstresult"))
        call = caller if first_result else _first_of(caller)
        self._callers[id(impl)] = (impl, call)
        return call

    def _registered(self, impl: Any) -> bool:
        return self._manager.get_plugin(impl.plugin_name) is impl.plugin


class _StandIn:
    """A plugin carrying one implementation, so pluggy can call it on its own."""


def _first_of(caller: Callable[..., list[Any]]) -> Callable[..., Any]:
    """A plain hook answers with a list of (here at most) one result."""

    def call(**arguments: Any) -> Any:
        results = caller(**arguments)
        return results[0] if results else None

    return call
