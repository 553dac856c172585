"""What ``/healthz`` and ``/readyz`` answer, from what the observer hooks saw.

- live (``/healthz``): the worker has not stopped, and its loop turned (asked the server for
  work or reported a state, answered or not) within the window, or an action is running (the
  loop waits for it).
- ready (``/readyz``): the worker runs (its runtime is open), the server answered the last
  exchange, and it did so within the window or an action is running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Health:
    """Thread-safe liveness and readiness, fed by the observer thread, read by HTTP handlers."""

    def __init__(self, window: float, clock: Callable[[], float] = time.time) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._last_turn = clock()
        self._last_answer: float | None = None
        self._reachable = False
        self._running = False
        self._stopped = False
        self._in_action = False

    def worker(self, running: bool) -> None:
        """The worker loop started (runtime open) or stopped."""
        with self._lock:
            self._running = running
            self._stopped = not running
            self._in_action = False
            self._last_turn = self._clock()

    def contact(self, reachable: bool, at: float) -> None:
        """One exchange with the server, answered or not, at ``at`` (``time.time()``)."""
        with self._lock:
            self._last_turn = at
            self._reachable = reachable
            if reachable:
                self._last_answer = at

    def action(self, running: bool) -> None:
        """An action started (RUNNING reported) or ended."""
        with self._lock:
            self._in_action = running

    def live(self) -> tuple[bool, str]:
        """``(alive, why)`` for ``/healthz``."""
        with self._lock:
            if self._stopped:
                return False, "worker stopped"
            if self._in_action:
                return True, "running an action"
            idle = self._clock() - self._last_turn
            if idle > self._window:
                return False, f"worker loop has not turned for {idle:.0f}s"
            return True, "worker loop turning"

    def ready(self) -> tuple[bool, str]:
        """``(ready, why)`` for ``/readyz``."""
        with self._lock:
            if not self._running:
                return False, "worker not running"
            if not self._reachable or self._last_answer is None:
                return False, "tink server not answering"
            if self._in_action:
                return True, "running an action"
            silent = self._clock() - self._last_answer
            if silent > self._window:
                return False, f"tink server last answered {silent:.0f}s ago"
            return True, "tink server answering"
