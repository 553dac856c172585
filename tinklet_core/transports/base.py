"""The one small interface every transport implements."""

from __future__ import annotations

from typing import Protocol

from tinklet_core.model import Action, Event


class Transport(Protocol):
    """Where actions come from and where their status goes.

    ``read`` returns the next action for this worker, or ``None`` when there is none right now
    (the worker backs off and asks again). ``write`` delivers one event or raises
    :class:`tinklet_core.errors.TransportError` (``retryable`` says whether to try again).
    ``exhausted`` is True once no action will ever come again (a local workflow file that has
    run to its end); a server transport is never exhausted.
    """

    def read(self) -> Action | None:
        """The next action to run, or ``None`` for "nothing now"."""
        ...

    def write(self, event: Event) -> None:
        """Deliver ``event``; raise ``TransportError`` if it was not delivered."""
        ...

    @property
    def exhausted(self) -> bool:
        """True when no more actions will come."""
        ...

    def close(self) -> None:
        """Release connections. Called once."""
        ...
