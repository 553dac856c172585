"""The runtime-agnostic model of work: what a transport hands the worker and a runtime runs.

Transports convert their wire messages into :class:`Action`; runtimes convert an
:class:`Action` into their own API calls and answer with an :class:`Outcome`; the worker turns
outcomes into :class:`Event` records that transports send back. Nothing else crosses between
them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import time
from dataclasses import dataclass, field

from tinklet_core.log_safe import short_id


class State(enum.Enum):
    """The state of an action as the Tink server knows it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"

    @property
    def is_final(self) -> bool:
        """True for the states that end an action."""
        return self in (State.SUCCESS, State.FAILED, State.TIMEOUT)


@dataclass(frozen=True)
class Volume:
    """One action volume in tink's syntax: ``/host:/ctr[:ro]`` or ``name:/ctr[:ro]``."""

    source: str
    target: str
    read_only: bool = False

    @property
    def is_host_path(self) -> bool:
        """True when the source is a path on the host rather than a named volume."""
        return self.source.startswith("/")


@dataclass(frozen=True)
class Action:
    """One action of a workflow, ready to run.

    ``timeout`` is in seconds; 0 (or less) means the action has no deadline. ``env`` keeps the
    order the workflow gave; a value may contain spaces and ``=``.
    """

    workflow_id: str
    task_id: str
    action_id: str
    agent_id: str
    name: str
    image: str
    timeout: int = 0
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    volumes: tuple[Volume, ...] = ()
    pid_namespace: str = ""
    network_namespace: str = ""
    retries: int = 0

    @property
    def label(self) -> str:
        """A short human name for logs: ``workflow/task/action``, each part escaped and shortened
        (:func:`~tinklet_core.log_safe.short_id`): the ids come from the server."""
        parts = (self.workflow_id, self.task_id, self.name or self.action_id)
        return "/".join(short_id(part) for part in parts)

    def identified_as(self, original: Action) -> Action:
        """This action with the ids and name of ``original``: a plugin's rewrite of an action
        is still reported as the action the server handed out."""
        return dataclasses.replace(self, **{name: getattr(original, name) for name in IDENTITY})

    def labels(self) -> dict[str, str]:
        """The labels every runtime object made for this action carries."""
        return {
            "tinklet.workflow": self.workflow_id,
            "tinklet.task": self.task_id,
            "tinklet.action": self.action_id,
            "tinklet.agent": self.agent_id,
        }


IDENTITY = ("workflow_id", "task_id", "action_id", "agent_id", "name")
"""The fields of an :class:`Action` that say which action it is (kept through rewrites)."""


@dataclass(frozen=True)
class Outcome:
    """What a runtime reports after running an action.

    ``reason`` is the runtime's own words for a non-success (``exit code 3``, ``OOMKilled``,
    ``image pull failed: …``); the worker adds the tail of the output to the message it reports.
    ``action_reason`` and ``action_message`` are what a FAILED or TIMEOUT action wrote itself
    (``/tinkerbell/failure-reason`` and ``failure-message``, one line each); the worker reports
    them first.
    """

    state: State
    reason: str = ""
    exit_code: int | None = None
    action_reason: str = ""
    action_message: str = ""


@dataclass(frozen=True)
class Event:
    """A status report for one action, as the worker sends it to the Tink server."""

    action: Action
    state: State
    started_at: dt.datetime | None = None
    stopped_at: dt.datetime | None = None
    message: str = ""

    @property
    def duration(self) -> dt.timedelta | None:
        """How long the action ran, when both ends are known."""
        if self.started_at is None or self.stopped_at is None:
            return None
        return self.stopped_at - self.started_at


@dataclass(frozen=True)
class RegistryCredentials:
    """A username and password for one image registry. ``repr`` never shows the password.

    ``source`` says where the login came from (``--registry``, a file, a credential helper), for
    the debug log; it plays no part in comparisons.
    """

    registry: str
    username: str
    password: str = field(repr=False)
    source: str = field(default="", compare=False)


class PullPhase(enum.Enum):
    """Where an image pull stands."""

    STARTED = "started"
    PROGRESS = "progress"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True)
class PullProgress:
    """One step of an image pull, as a runtime reports it through ``ActionContext.pull_progress``.

    ``current`` and ``total`` count ``unit`` (``bytes`` or ``layers``; ``total`` is 0 when the
    engine does not say). ``at`` is a ``time.monotonic()`` reading taken when the record was
    made, so observers can time a pull from its STARTED to its FINISHED or FAILED record.
    """

    image: str
    phase: PullPhase
    current: int = 0
    total: int = 0
    unit: str = "bytes"
    at: float = field(default_factory=time.monotonic)
