"""A test plugin that reports a pull for every action before the runtime runs it, through the
public ``ActionContext.pull_progress`` (the process runtime has no images to pull)."""

from __future__ import annotations

import time
from collections.abc import Generator

from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, PullPhase, PullProgress
from tinklet_core.runtime import ActionContext

PULL_SECONDS = 0.2


@hookimpl(wrapper=True)
def tinklet_execute_action(context: ActionContext) -> Generator[None, Outcome, Outcome]:
    """STARTED, a pause, FINISHED; then run the action."""
    context.pull_progress(PullProgress(context.action.image, PullPhase.STARTED))
    time.sleep(PULL_SECONDS)
    finished = PullProgress(context.action.image, PullPhase.FINISHED, current=1, total=1, unit="layers")
    context.pull_progress(finished)
    return (yield)
