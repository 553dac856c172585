"""Applying every plugin's ``tinklet_rewrite_action``, one after another.

Rewrites compose: each plugin's rewrite gets the action as the previous one left it, in
pluggy's call order (``@hookimpl(tryfirst=True)`` first, ``trylast=True`` last, otherwise the
plugin registered last goes first: installed plugins before ``-p`` modules, and an object
returned by ``tinklet_configure`` before both). ``None`` means "no change". The server's
ids and the action's name are kept whatever a rewrite returns, since status is reported for the
action the server handed out.
"""

from __future__ import annotations

from tinklet_core.model import Action
from tinklet_core.plugin_calls import Origin, PluginCalls, PluginFault, error_line, plain_origin

HOOK = "tinklet_rewrite_action"


def rewrite_action(calls: PluginCalls, action: Action, origin: Origin = plain_origin) -> Action:
    """``action`` after every plugin's rewrite, in turn. A rewrite that raises or returns
    something other than an :class:`Action` or ``None`` is a :class:`PluginFault` naming it."""
    current = action
    for plugin, call in calls.each(HOOK):
        try:
            changed = call(action=current)
        except Exception as exc:
            raise PluginFault(f"{origin(plugin)}: {HOOK} raised {error_line(exc)}") from exc
        if changed is None:
            continue
        if not isinstance(changed, Action):
            raise PluginFault(
                f"{origin(plugin)}: {HOOK} returned {type(changed).__name__}, not an Action or None"
            )
        current = changed
    return action if current == action else current.identified_as(action)
