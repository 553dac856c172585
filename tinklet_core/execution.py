"""The chain that runs an action: the opened runtime's ``tinklet_execute_action`` and the hook
wrappers around it, each one checked.

The chain runs in a plugin manager of its own that holds a checked copy of each implementation
(same plugin name, same ``tryfirst``/``trylast``, same order), so pluggy still calls them, with
only the arguments each one takes. A check pins what went wrong on one plugin:

- the runtime or a wrapper returns something that is not an :class:`~tinklet_core.model.Outcome`,
  a wrapper raises an unexpected error, does not yield, or yields twice: :class:`PluginFault`
  naming it (the worker fails the action with that message and goes on);
- a wrapper forgets ``return outcome`` (returns ``None`` although the runtime answered): the
  runtime's outcome is kept, since the action did run and that is its result, and a warning
  names the wrapper;
- :class:`~tinklet_core.errors.ActionRefused` and :class:`~tinklet_core.errors.ActionInterrupted`
  pass unchanged, as does an error the runtime itself raised (the worker reports it as a runtime
  error).

Old-style ``hookwrapper=True`` wrappers run unchecked; the worker still checks the chain's
final answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

import pluggy

from tinklet_core import hookspecs
from tinklet_core.errors import ActionInterrupted, ActionRefused
from tinklet_core.model import Outcome
from tinklet_core.plugin_calls import Origin, PluginFault, error_line, plain_origin

HOOK = "tinklet_execute_action"
_PASS_THROUGH = (ActionRefused, ActionInterrupted, PluginFault)
log = logging.getLogger("tinklet")


def execution_caller(
    manager: pluggy.PluginManager, runtime: object, origin: Origin = plain_origin
) -> Callable[..., Outcome | None]:
    """``tinklet_execute_action`` limited to its one owner, the opened ``runtime``, and the hook
    wrappers around it, each checked (see the module's docstring). Another plugin's plain
    implementation would take actions away from the runtime the user chose: it is left out,
    with a warning."""
    chain = pluggy.PluginManager(hookspecs.PROJECT)
    chain.add_hookspecs(hookspecs)
    for impl in getattr(manager.hook, HOOK).get_hookimpls():
        if not (impl.plugin is runtime or impl.wrapper or impl.hookwrapper):
            log.warning(
                "plugin %r implements %s without wrapper=True; only the chosen runtime runs actions, "
                "so it is ignored",
                impl.plugin_name,
                HOOK,
            )
            continue
        if impl.wrapper:
            function = _checked_wrapper(impl.function, impl.argnames, origin(impl.plugin_name))
        elif impl.hookwrapper:
            function = _old_style(impl.function, impl.argnames)
        else:
            function = _checked_runtime(impl.function, impl.argnames, origin(impl.plugin_name))
        chain.register(_Implementation(function, impl.opts), name=impl.plugin_name)
    return chain.hook.tinklet_execute_action  # type: ignore[no-any-return]


class _Implementation:
    """A stand-in plugin carrying one checked implementation."""

    def __init__(self, function: Callable[..., Any], opts: Any) -> None:
        setattr(function, f"{hookspecs.PROJECT}_impl", dict(opts))
        self.tinklet_execute_action = function


def _arguments(argnames: tuple[str, ...], context: Any) -> dict[str, Any]:
    return {name: context for name in argnames if name == "context"}


def _old_style(function: Callable[..., Any], argnames: tuple[str, ...]) -> Callable[..., Any]:
    def tinklet_execute_action(context: Any) -> Generator[Any, Any, Any]:
        return (yield from function(**_arguments(argnames, context)))

    return tinklet_execute_action


def _checked_runtime(
    function: Callable[..., Any], argnames: tuple[str, ...], origin: str
) -> Callable[..., Any]:
    def tinklet_execute_action(context: Any) -> Outcome | None:
        return _checked_result(function(**_arguments(argnames, context)), origin, "")

    return tinklet_execute_action


def _checked_result(result: object, origin: str, what: str) -> Outcome | None:
    if result is None or isinstance(result, Outcome):
        return result
    raise PluginFault(f"{origin}: its {HOOK}{what} returned {type(result).__name__}, not an Outcome")


def _checked_wrapper(
    function: Callable[..., Any], argnames: tuple[str, ...], origin: str
) -> Callable[..., Any]:
    def tinklet_execute_action(context: Any) -> Generator[None, Outcome | None, Outcome | None]:
        wrapper = function(**_arguments(argnames, context))
        try:
            next(wrapper)
        except StopIteration:
            raise PluginFault(f"{origin}: its {HOOK} wrapper did not yield") from None
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise PluginFault(f"{origin}: its {HOOK} wrapper raised {error_line(exc)}") from exc
        try:
            inner = yield
        except GeneratorExit:
            wrapper.close()
            raise
        except BaseException as inner_error:
            return _after_error(wrapper, inner_error, origin)
        return _after_result(wrapper, inner, origin, context)

    return tinklet_execute_action


def _after_error(
    wrapper: Generator[Any, Any, Any], inner_error: BaseException, origin: str
) -> Outcome | None:
    try:
        wrapper.throw(inner_error)
    except StopIteration as stop:
        return _checked_result(stop.value, origin, " wrapper")
    except BaseException as raised:
        if raised is inner_error or isinstance(raised, _PASS_THROUGH) or not isinstance(raised, Exception):
            raise
        raise PluginFault(f"{origin}: its {HOOK} wrapper raised {error_line(raised)}") from raised
    raise PluginFault(f"{origin}: its {HOOK} wrapper yielded twice")


def _after_result(
    wrapper: Generator[Any, Any, Any], inner: Outcome | None, origin: str, context: Any
) -> Outcome | None:
    try:
        wrapper.send(inner)
    except StopIteration as stop:
        result = _checked_result(stop.value, origin, " wrapper")
        if result is None and inner is not None:
            context.log.warning(
                "%s: its %s wrapper returned None, not the outcome; keeping the runtime's (%s)",
                origin,
                HOOK,
                inner.state.value,
            )
            return inner
        return result
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        raise PluginFault(f"{origin}: its {HOOK} wrapper raised {error_line(exc)}") from exc
    raise PluginFault(f"{origin}: its {HOOK} wrapper yielded twice")
