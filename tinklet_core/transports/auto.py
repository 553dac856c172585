"""``--protocol auto``: find out which generation of the Tink protocol the server speaks.

Tries v2, then v1, then v1-legacy, moving on only when the server answers UNIMPLEMENTED
(:class:`~tinklet_core.transports.grpc_common.UnsupportedProtocol`). Any answer in the
protocol — an action, "no action now" (NOT_FOUND, FAILED_PRECONDITION), even a malformed
action — settles the choice, which is logged once. A server that cannot be reached (down at
start, TLS trouble) settles nothing: the error goes to the worker, which backs off and asks
again, and detection carries on where it was once the server answers.

A chosen protocol is not forever: when the server later answers UNIMPLEMENTED to it (another
generation now runs behind the same address, say v2 replaced by v1 during an outage), detection
starts again from the first candidate and the new choice is logged once as a change. Only
UNIMPLEMENTED does this; "no work now" and an unreachable server keep the choice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc

from tinklet_core.errors import MalformedAction, TransportError
from tinklet_core.model import Action, Event
from tinklet_core.transports.base import Transport
from tinklet_core.transports.grpc_common import (
    DEFAULT_REPORT_GRACE,
    UnsupportedProtocol,
    connection_options,
)
from tinklet_core.transports.grpc_v1 import GrpcV1Transport
from tinklet_core.transports.grpc_v2 import GrpcV2Transport

Candidate = tuple[str, Callable[[], Transport]]
"""A protocol name and how to open its transport."""

_log = logging.getLogger("tinklet.transport")


class AutoTransport:
    """Detect the server's protocol among ``candidates`` (tried in order), then speak it.

    Only one candidate's channel is open at a time.
    """

    def __init__(self, target: str, candidates: Sequence[Candidate]) -> None:
        if not candidates:
            raise ValueError("AutoTransport needs at least one candidate")
        self._target = target
        self._candidates = list(candidates)
        self._index = 0
        self._current: Transport | None = None
        self._chosen: str | None = None
        self._given_up: str | None = None  # the protocol the server stopped speaking, while re-detecting

    @classmethod
    def for_server(
        cls,
        target: str,
        identifier: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        cancelled: threading.Event,
        server_name: str | None = None,
        agent_attributes: Mapping[str, Any] | None = None,
        report_grace: float = DEFAULT_REPORT_GRACE,
    ) -> AutoTransport:
        """v2, then v1, then v1-legacy to ``target`` for ``identifier`` (only v2 can carry
        ``agent_attributes``)."""
        common: dict[str, Any] = {
            "credentials": credentials,
            "cancelled": cancelled,
            "server_name": server_name,
            "report_grace": report_grace,
        }
        return cls(
            target,
            [
                (
                    "v2",
                    lambda: GrpcV2Transport(target, identifier, agent_attributes=agent_attributes, **common),
                ),
                ("v1", lambda: GrpcV1Transport(target, identifier, **common)),
                ("v1-legacy", lambda: GrpcV1Transport(target, identifier, legacy=True, **common)),
            ],
        )

    @classmethod
    def from_settings(cls, settings: Any) -> AutoTransport:
        """Build from a transport-settings object (``target``, ``identifier``, ``credentials``,
        ``server_name``, ``cancelled``, ``report_grace``)."""
        return cls.for_server(
            settings.target,
            settings.identifier,
            agent_attributes=getattr(settings, "agent_attributes", None),
            **connection_options(settings),
        )

    @property
    def chosen(self) -> str | None:
        """The protocol the server was found to speak, or None while undetected."""
        return self._chosen

    @property
    def exhausted(self) -> bool:
        """Always False: a server may hand out work at any time."""
        return False

    def read(self) -> Action | None:
        """Read from the detected protocol, detecting it first when needed.

        Raises :class:`TransportError` while the server cannot be reached, and once (per round
        of detection) when it speaks none of the candidates.
        """
        if self._chosen is not None:
            try:
                return self._open().read()
            except UnsupportedProtocol:
                self._detect_again()
        while True:
            name = self._candidates[self._index][0]
            try:
                action = self._open().read()
            except UnsupportedProtocol:
                self._close_current()
                self._index += 1
                if self._index < len(self._candidates):
                    continue
                self._index = 0
                names = ", ".join(candidate[0] for candidate in self._candidates)
                raise TransportError(
                    f"tink server {self._target} answers UNIMPLEMENTED to every protocol tried ({names})"
                ) from None
            except MalformedAction:
                self._choose(name)
                raise
            self._choose(name)
            return action

    def write(self, event: Event) -> None:
        """Deliver ``event`` with the detected protocol's transport."""
        if self._current is None:
            raise TransportError("no tink protocol detected yet", retryable=False)
        self._current.write(event)

    def close(self) -> None:
        """Close the open candidate's channel."""
        self._close_current()

    def _open(self) -> Transport:
        if self._current is None:
            self._current = self._candidates[self._index][1]()
        return self._current

    def _close_current(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.close()

    def _detect_again(self) -> None:
        """The chosen protocol is answered UNIMPLEMENTED now: forget it, start from the first."""
        self._close_current()
        self._given_up = self._given_up or self._chosen
        self._chosen = None
        self._index = 0

    def _choose(self, name: str) -> None:
        if self._chosen is not None:
            return
        self._chosen = name
        before, self._given_up = self._given_up, None
        if before == name:
            return  # the same generation answers again: nothing changed
        if before is None:
            _log.info("tink server %s speaks protocol %s", self._target, name)
        else:
            _log.warning("tink server %s speaks protocol %s now (was %s)", self._target, name, before)
