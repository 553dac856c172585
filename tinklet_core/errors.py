"""The errors tinklet's library code returns; the edges (CLI, worker loop) log them.

Every message is one line a user can act on, and none carries a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinklet_core.model import Action


class TinkletError(Exception):
    """Base of every error tinklet raises on purpose; ``str()`` is the user-facing line."""


class ConfigError(TinkletError):
    """A flag, environment variable or config file value is missing or malformed."""


class PluginError(TinkletError):
    """A plugin could not be loaded, or an unknown runtime was asked for."""


class WorkflowFileError(TinkletError):
    """A workflow file cannot be read or does not describe a valid workflow."""


class RuntimeUnavailable(TinkletError):
    """The container runtime (daemon, socket, API server) cannot be reached."""


class EngineNotReady(RuntimeUnavailable):
    """The engine is not there yet: nothing listens at its address (no socket, connection
    refused, API server unreachable or answering 5xx). Waiting may fix it, so worker mode waits
    for it; a plain :class:`RuntimeUnavailable` is a misconfiguration waiting cannot fix."""


class ActionInterrupted(TinkletError):
    """The worker is shutting down; the action was stopped and will be re-served later."""


class TransportError(TinkletError):
    """Talking to the Tink server failed.

    ``retryable`` says whether trying the same call again may succeed (server down, deadline
    exceeded) or never will (the action is unknown, the report is malformed).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class MalformedAction(TinkletError):
    """The server handed out an action that cannot run (a bad volume, env entry…).

    ``action`` carries the ids (and whatever else could be read) so the worker can report the
    action FAILED with this message instead of dropping it.
    """

    def __init__(self, message: str, action: Action) -> None:
        super().__init__(message)
        self.action = action


class ActionRefused(TinkletError):
    """A plugin refused to run an action (a policy wrapper); the action is reported FAILED with
    this message."""
