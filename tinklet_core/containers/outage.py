"""Riding out an engine outage: wait with backoff until the engine answers again.

A dockerd that is restarted, or a Podman service that died, is not the action's fault. The
shared runtime calls :func:`await_engine` when an engine call found the engine unreachable: it
logs the outage once, asks ``revive`` to bring the engine back where the plugin can (Podman
restarts the service it started), and pings with backoff until the engine answers, the action's
deadline passes or tinklet shuts down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tinklet_core.backoff import Backoff
from tinklet_core.containers.engine import EngineFailure, EngineUnreachable
from tinklet_core.runtime import ActionContext, WaitResult

#: Backoff bounds (seconds) between pings of an engine that does not answer.
FIRST_PING_DELAY = 0.2
LAST_PING_DELAY = 2.0


def await_engine(
    context: ActionContext,
    lost: EngineUnreachable,
    ping: Callable[[], None],
    revive: Callable[[], None],
    log: logging.Logger,
) -> WaitResult:
    """Wait until ``ping`` returns: ``EXITED`` once the engine answers again, ``TIMED_OUT`` when
    the action's deadline passes first, ``CANCELLED`` when tinklet shuts down.

    ``lost`` is the failure that showed the outage; it is logged once, and the recovery once.
    """
    log.warning("%s: %s; waiting for the engine to come back", context.action.label, lost)
    began = time.monotonic()
    backoff = Backoff(FIRST_PING_DELAY, LAST_PING_DELAY)
    while True:
        revive()
        try:
            ping()
        except EngineFailure:  # unreachable, or up but not ready yet
            pass
        else:
            log.info(
                "%s: the engine answers again after %.1fs", context.action.label, time.monotonic() - began
            )
            return WaitResult.EXITED
        delay = backoff.next_delay()
        left = context.seconds_left()
        if left is not None:
            if left <= 0:
                return WaitResult.TIMED_OUT
            delay = min(delay, left)
        if context.cancelled.wait(delay):
            return WaitResult.CANCELLED
