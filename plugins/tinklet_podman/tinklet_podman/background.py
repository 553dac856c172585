"""One blocking call in a daemon thread, so the caller can watch the deadline and shutdown.

The runtime runs its blocking Podman calls (a pull; the output stream followed by the wait) in a
:class:`Background` and waits on :attr:`Background.done` with
:func:`tinklet_core.runtime.wait_for_exit`: deadlines and shutdown never depend on a client
timeout. A daemon thread the caller gave up on ends when Podman answers and never keeps tinklet
alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """Runs ``target`` in a daemon thread; :attr:`done` is set when it returned or raised."""

    def __init__(self, target: Callable[[], T], name: str) -> None:
        self.done = threading.Event()
        self._target = target
        self._outcome: tuple[T | None, BaseException | None] = (None, None)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds; True once the call finished."""
        self._thread.join(timeout)
        return self.done.is_set()

    def result(self) -> T:
        """The call's value, or its exception raised again. Only once :attr:`done` is set."""
        if not self.done.is_set():
            raise RuntimeError(f"{self._thread.name} has not finished")
        value, error = self._outcome
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    def _run(self) -> None:
        try:
            self._outcome = (self._target(), None)
        except BaseException as exc:  # handed to the caller by result()
            self._outcome = (None, exc)
        finally:
            self.done.set()
