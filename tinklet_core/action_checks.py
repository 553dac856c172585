"""The one check every transport runs on an action before the worker may run it.

A server (or a workflow file) can hand out an action no runtime should try: no image, or a
negative timeout (which would otherwise read as "no limit"). Such an action is malformed: the
worker reports it FAILED with the reason and goes on to the next one.
"""

from __future__ import annotations

from collections.abc import Iterable

from tinklet_core.errors import MalformedAction
from tinklet_core.log_safe import short_id
from tinklet_core.model import Action


def action_problems(action: Action) -> list[str]:
    """What makes ``action`` unrunnable, one phrase each; empty when it can run."""
    problems = []
    if not action.image:
        problems.append("'image' is empty")
    if action.timeout < 0:
        problems.append(f"'timeout' is negative ({action.timeout}); use 0 for no limit")
    return problems


def runnable(action: Action, earlier_problems: Iterable[str] = ()) -> Action:
    """``action`` unchanged when it can run; else :class:`MalformedAction` naming every problem
    (``earlier_problems`` first: what the transport found converting it) and carrying the action,
    so that it can be reported FAILED."""
    problems = action_problems(action) + list(earlier_problems)
    if problems:
        name = short_id(action.action_id or action.name or "(no id)")
        raise MalformedAction(f"action {name}: {'; '.join(problems)}", action=action)
    return action
