"""Fault injection for the test Tink server: reports refused with a status code or left hanging,
and GetAction calls held back like a server that retries internally."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import NoReturn

import grpc

from tinklet_core.model import State
from tinklet_core.testing.tink_server.records import abort


@dataclass
class Refusal:
    """What to do with the next ``remaining`` matching reports: answer ``code``, or, with
    ``code`` None, hang (answer nothing until the client gives up or the server stops)."""

    remaining: int
    code: grpc.StatusCode | None
    final_only: bool


class ReportFaults:
    """The refusal in force, if any (guarded by the server's lock, as the rest of its state)."""

    def __init__(self) -> None:
        self._refusal: Refusal | None = None

    def arm(self, count: int, code: grpc.StatusCode | None, final_only: bool) -> None:
        """Refuse (``code``) or hang (None) the next ``count`` matching reports; 0 disarms."""
        self._refusal = Refusal(count, code, final_only) if count > 0 else None

    def take(self, state: State) -> Refusal | None:
        """How to refuse a report in ``state`` (using one refusal up), else None."""
        refusal = self._refusal
        if refusal is None or not (state.is_final or not refusal.final_only):
            return None
        refusal.remaining -= 1
        if refusal.remaining <= 0:
            self._refusal = None
        return refusal


def refuse(context: grpc.ServicerContext, refusal: Refusal, stopping: threading.Event) -> NoReturn:
    """Answer a refused report with its code, or hang until the client or the server gives up."""
    if refusal.code is not None:
        abort(context, refusal.code, "report refused by the test server")
    while context.is_active() and not stopping.wait(0.05):
        pass
    abort(context, grpc.StatusCode.UNAVAILABLE, "the test server is stopping")


def hold(context: grpc.ServicerContext, seconds: float, stopping: threading.Event) -> None:
    """Wait ``seconds``, or less if the client or the server gives up."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0 and context.is_active():
        if stopping.wait(min(remaining, 0.05)):
            abort(context, grpc.StatusCode.UNAVAILABLE, "the test server is stopping")
