"""What containing plugins costs per action: the checked calls against pluggy's plain ones.

Prints, side by side in one run, the time per call (median of ``--repeat`` rounds of
``--calls`` calls, microseconds) of:

1. ``tinklet_execute_action`` through one runtime and two wrappers: pluggy's own hook caller
   (what the worker called before) against the checked execution chain
   (:mod:`tinklet_core.execution`);
2. ``tinklet_rewrite_action`` with three rewrites: pluggy's hook caller (first result only)
   against :func:`tinklet_core.rewrites.rewrite_action` (each rewrite in turn, checked);
3. ``tinklet_action_event`` to three observers: pluggy's hook caller against one call per
   observer (:class:`tinklet_core.plugin_calls.PluginCalls`).

A container action takes hundreds of milliseconds, so microseconds here are the scale to read.

    .venv/bin/python bench/bench_plugin_calls.py [--calls 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import threading
import time
from collections.abc import Callable, Generator

from tinklet_core import Action, ActionContext, Event, Outcome, RuntimeSettings, State, hookimpl
from tinklet_core.execution import execution_caller
from tinklet_core.plugin_calls import PluginCalls
from tinklet_core.plugins import new_plugin_manager
from tinklet_core.rewrites import rewrite_action

ACTION = Action("wf", "t", "a", "agent", "a", "docker.io/library/busybox:latest")


class Runtime:
    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        return Outcome(State.SUCCESS)


class Wrapper:
    @hookimpl(wrapper=True)
    def tinklet_execute_action(self, context: ActionContext) -> Generator[None, Outcome, Outcome]:
        return (yield)


class Rewrite:
    def __init__(self, image: str) -> None:
        self.image = image

    @hookimpl
    def tinklet_rewrite_action(self, action: Action) -> Action:
        return dataclasses.replace(action, image=self.image)


class Observer:
    def __init__(self) -> None:
        self.count = 0

    @hookimpl
    def tinklet_action_event(self, event: Event) -> None:
        self.count += 1


def per_call(call: Callable[[], object], calls: int, repeat: int) -> float:
    """Median microseconds per call."""
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    manager = new_plugin_manager()
    runtime = Runtime()
    for name, plugin in (
        ("runtime", runtime), ("wrap-1", Wrapper()), ("wrap-2", Wrapper()),
        ("rewrite-1", Rewrite("a/x")), ("rewrite-2", Rewrite("b/x")), ("rewrite-3", Rewrite("c/x")),
        ("observer-1", Observer()), ("observer-2", Observer()), ("observer-3", Observer()),
    ):  # fmt: skip
        manager.register(plugin, name=name)
    context = ActionContext(
        ACTION, RuntimeSettings(), None, threading.Event(), lambda line: None, lambda image: None,
        logging.getLogger("bench"),
    )  # fmt: skip
    chain = execution_caller(manager, runtime)
    calls = PluginCalls(manager)
    event = Event(ACTION, State.SUCCESS)
    rows = [
        (
            "execute: runtime + 2 wrappers",
            lambda: manager.hook.tinklet_execute_action(context=context),
            lambda: chain(context=context),
        ),
        (
            "rewrite: 3 rewrites",
            lambda: manager.hook.tinklet_rewrite_action(action=ACTION),
            lambda: rewrite_action(calls, ACTION),
        ),
        (
            "observe: 3 observers",
            lambda: manager.hook.tinklet_action_event(event=event),
            lambda: calls.call_each("tinklet_action_event", {"event": event}, lambda plugin, exc: None),
        ),
    ]
    print(f"{'per call, microseconds (median)':34} {'pluggy':>9} {'checked':>9} {'ratio':>7}")
    for label, plain, checked in rows:
        before = per_call(plain, args.calls, args.repeat)
        after = per_call(checked, args.calls, args.repeat)
        print(f"{label:34} {before:9.2f} {after:9.2f} {after / before:7.2f}")


if __name__ == "__main__":
    main()
