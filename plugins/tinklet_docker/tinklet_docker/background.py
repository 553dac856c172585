"""Running one blocking call in a helper thread while the caller watches deadline and shutdown.

The runtime runs a blocking docker call (an image pull, a log stream and wait) in a
:class:`Background` and waits on :attr:`Background.done` with
:func:`tinklet_core.runtime.wait_for_exit`, so deadlines and shutdown never depend on a client
timeout. The thread is a daemon: if the caller gives up on it (timeout, shutdown), it ends on
its own when docker answers and never keeps the process alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """Calls ``target`` in a daemon thread; :attr:`done` is set once it returned or raised."""

    def __init__(self, target: Callable[[], T], name: str) -> None:
        self.done = threading.Event()
        self._target = target
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Background[T]:
        """Start the thread; returns ``self`` for chaining."""
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the call to finish; True when it has."""
        self._thread.join(timeout)
        return self.done.is_set()

    def result(self) -> T:
        """The call's return value, or its exception re-raised. Only valid once :attr:`done`."""
        if not self.done.is_set():
            raise RuntimeError("the background call has not finished")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def _run(self) -> None:
        try:
            self._value = self._target()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        finally:
            self.done.set()
