"""Delivering status events to observers off the worker's path.

Observers (``tinklet_action_event``: metrics, audit logs) run in their own thread fed by a
bounded queue, so a slow or stuck observer never delays an action, a status report or the next
``GetAction``. Events reach observers in the order they were reported.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from tinklet_core.model import Event
from tinklet_core.runtime_helpers import one_line

_STOP = object()


class EventDispatcher:
    """Calls ``notify(event)`` for each published event, from one background thread.

    :meth:`publish` never blocks: when ``capacity`` events are already waiting, the new one is
    dropped and counted (one warning per run of drops). :meth:`close` lets the observers catch
    up for at most ``drain_timeout`` seconds, then leaves the thread behind (it is a daemon).
    """

    def __init__(self, notify: Callable[[Event], None], log: logging.Logger, capacity: int = 1000) -> None:
        self._notify = notify
        self._log = log
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._dropping = False
        self._thread = threading.Thread(target=self._run, name="tinklet-observers", daemon=True)

    def publish(self, event: Event) -> None:
        """Queue ``event`` for the observers; never waits for them."""
        self._put(event)

    def submit(self, call: Callable[[], None]) -> None:
        """Queue any other notification (``call()`` runs in the observer thread, in order with
        the events); never waits for the observers."""
        self._put(call)

    def _put(self, item: object) -> None:
        if self._thread.ident is None:  # started with the first event
            self._thread.start()
        try:
            self._queue.put_nowait(item)
            self._dropping = False
        except queue.Full:
            if not self._dropping:
                self._log.warning("event observers are falling behind; dropping events until they catch up")
            self._dropping = True

    def close(self, drain_timeout: float = 2.0) -> None:
        """Deliver what is queued (for at most ``drain_timeout`` seconds) and stop the thread."""
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=drain_timeout)
        except queue.Full:
            return
        self._thread.join(drain_timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                if isinstance(item, Event):
                    self._notify(item)
                else:
                    assert callable(item)
                    item()
            except Exception as exc:
                self._log.warning("an event observer failed: %s", one_line(exc))
