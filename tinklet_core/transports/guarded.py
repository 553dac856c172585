"""A transport as the worker sees it: whatever the plugin's object does, it keeps the contract.

A transport's ``read`` must return an :class:`~tinklet_core.model.Action` or ``None`` and raise
only :class:`~tinklet_core.errors.TransportError` (or ``MalformedAction``); ``write`` likewise.
:class:`GuardedTransport` turns anything else (an ``OSError``, a ``dict`` returned) into a
retryable ``TransportError`` whose message names the plugin: the worker logs it once, backs off
and asks again, as for a server that is down, and never exits because of it.
"""

from __future__ import annotations

import logging

from tinklet_core.errors import ActionInterrupted, MalformedAction, TransportError
from tinklet_core.model import Action, Event
from tinklet_core.plugin_calls import error_line
from tinklet_core.transports.base import Transport

log = logging.getLogger("tinklet")
_CONTRACT = (TransportError, MalformedAction, ActionInterrupted)


class GuardedTransport:
    """Wraps ``transport`` (provided by the plugin ``origin`` names) so it keeps the contract."""

    def __init__(self, transport: Transport, origin: str) -> None:
        self._transport = transport
        self._origin = origin

    def read(self) -> Action | None:
        """The transport's next action; its mistakes become a retryable ``TransportError``."""
        try:
            action = self._transport.read()
        except _CONTRACT:
            raise
        except Exception as exc:
            raise self._fault(f"read() raised {error_line(exc)}") from exc
        if action is not None and not isinstance(action, Action):
            raise self._fault(f"read() returned {type(action).__name__}, not an Action or None")
        return action

    def write(self, event: Event) -> None:
        """Deliver ``event``; an unexpected error becomes a retryable ``TransportError``."""
        try:
            self._transport.write(event)
        except _CONTRACT:
            raise
        except Exception as exc:
            raise self._fault(f"write() raised {error_line(exc)}") from exc

    @property
    def exhausted(self) -> bool:
        """The transport's answer; one that raises counts as "not exhausted"."""
        try:
            return bool(self._transport.exhausted)
        except Exception:
            return False

    def close(self) -> None:
        """Close the transport; an error closing it is logged, not raised."""
        try:
            self._transport.close()
        except Exception as exc:
            log.warning("%s: transport close() raised %s", self._origin, error_line(exc))

    def _fault(self, what: str) -> TransportError:
        return TransportError(f"{self._origin}: transport {what}", retryable=True)
