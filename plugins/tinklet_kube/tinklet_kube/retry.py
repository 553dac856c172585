"""Riding out an API server that is away (a control-plane restart, a failover, overload).

While the API server is unreachable or answers 5xx/429 (:attr:`KubeApiError.passing`), watches,
log streams, status reads and the final delete are tried again after :meth:`ApiRetry.delay`:
exponential with jitter, capped, and never shorter than the server's ``Retry-After``. Nothing here
bounds how long: the action's deadline (and shutdown) does, in the runtime.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from tinklet_kube.errors import KubeApiError

FIRST_WAIT = 0.2
MAX_WAIT = 4.0
# A Retry-After longer than this is not believed (a misconfigured proxy must not park an action).
MAX_RETRY_AFTER = 30.0


class ApiRetry:
    """The waits between attempts of one call that keeps failing; :meth:`reset` after a success."""

    def __init__(self, first: float = FIRST_WAIT, ceiling: float = MAX_WAIT) -> None:
        self._first = first
        self._ceiling = ceiling
        self._next = first

    def delay(self, exc: KubeApiError) -> float:
        """Seconds to wait before trying again after ``exc``."""
        wait = random.uniform(self._first, self._next)
        self._next = min(self._ceiling, self._next * 2)
        if exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, MAX_RETRY_AFTER))
        return wait

    def reset(self) -> None:
        """Start again from the shortest wait."""
        self._next = self._first


class OutageLog:
    """Logs an API outage once when it starts and once when the API answers again, however
    many threads (watches, the log reader) notice it; silent until :meth:`arm` (while the
    runtime opens, its one error line says it all). Thread-safe."""

    def __init__(self, log: logging.Logger, host: str) -> None:
        self._log = log
        self._host = host
        self._lock = threading.Lock()
        self._since: float | None = None
        self._armed = False

    def arm(self) -> None:
        """Log outages from now on (the runtime is open)."""
        self._armed = True

    def failed(self, exc: KubeApiError) -> None:
        """A call failed with ``exc``; the first passing failure of an outage is logged."""
        if not exc.passing:
            self.answered()
            return
        with self._lock:
            if self._since is not None or not self._armed:
                return
            self._since = time.monotonic()
        self._log.warning("Kubernetes API %s is not answering: %s; retrying until it does", self._host, exc)

    def answered(self) -> None:
        """A call got an answer; ends the outage (logged) if there was one."""
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            self._log.info(
                "Kubernetes API %s answers again after %.0f s", self._host, time.monotonic() - since
            )
