"""What the core hands a runtime plugin, and the records a runtime plugin hands back.

A runtime plugin's entry-point module implements :func:`tinklet_runtimes` and returns
:class:`RuntimeSpec` records. Only the runtime the user chose is *opened*: the core calls its
``factory`` with a :class:`RuntimeSettings`, and registers the object it returns with the plugin
manager for the rest of the run. That object keeps the runtime's connection (a docker client, a
kubernetes API client) and implements the per-action hooks (``tinklet_execute_action``, and
optionally ``tinklet_prepare_environment`` / ``tinklet_cleanup_environment``); ``close()`` is
called once when tinklet stops. Runtimes that were not chosen are never imported beyond their
entry-point module, so choosing docker never imports the kubernetes client.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tinklet_core.model import Action, PullProgress, RegistryCredentials
from tinklet_core.options import PluginOption
from tinklet_core.proxy import ProxySettings

#: The names Docker Hub goes by in a login or an image reference.
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}


class PullPolicy(enum.Enum):
    """When a runtime pulls an action's image."""

    MISSING = "missing"
    ALWAYS = "always"
    NEVER = "never"


class Privilege(enum.Enum):
    """How much privilege an action container gets.

    ``privileged`` is what Tinkerbell hosts expect (actions write disks, kexec…). ``all-caps``
    grants every capability the host allows without the privileged flag (no host devices), for
    hosts whose kernel refuses privileged containers. ``none`` gives the runtime's defaults.
    """

    PRIVILEGED = "privileged"
    ALL_CAPS = "all-caps"
    NONE = "none"


RuntimeOption = PluginOption
"""A runtime's setting: the same record every plugin uses to declare an option."""


class Runtime(Protocol):
    """The object a runtime factory returns. Its hook methods carry ``@hookimpl``."""

    def close(self) -> None:
        """Release the runtime's connections and anything it started. Called once."""


@dataclass(frozen=True)
class RuntimeSettings:
    """Everything a runtime factory needs, read once from flags, env and config."""

    agent_id: str = ""
    shared_agent: bool = False
    """Other tinklet processes on this host may run actions as the same ``agent_id`` at the same
    time (``tinklet run`` without ``--identifier``): leftovers of that agent that are still
    running may be theirs, and are left alone."""
    pull_policy: PullPolicy = PullPolicy.MISSING
    privilege: Privilege = Privilege.PRIVILEGED
    proxy: ProxySettings = field(default_factory=ProxySettings)
    """The proxy for actions' environment (and pulls, where the runtime decides)."""
    state_dir: Path | None = None
    """Where per-action host directories go (``--state-dir``); ``None``: a private temp dir."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The values of this runtime's own :attr:`RuntimeSpec.options` (keys with underscores),
    and nothing else."""


@dataclass(frozen=True)
class RuntimeSpec:
    """A runtime a plugin provides: its name, aliases, options and how to open it.

    ``factory`` is called only when this runtime is chosen; it must fail with
    :class:`tinklet_core.errors.RuntimeUnavailable` when its daemon or API cannot be reached.
    Make it a class (or annotate the function's return type with one) so ``tinklet plugins
    list`` can show the runtime's hooks without opening it.
    """

    name: str
    factory: Callable[[RuntimeSettings], Runtime]
    summary: str = ""
    aliases: tuple[str, ...] = ()
    options: tuple[RuntimeOption, ...] = ()


@dataclass
class ActionContext:
    """One action to run, with what the runtime needs to run it well.

    - ``deadline``: a ``time.monotonic()`` value after which the action must be killed and
      reported TIMEOUT, or ``None`` for no limit.
    - ``cancelled``: set when tinklet is shutting down; stop the container, remove it and raise
      :class:`tinklet_core.errors.ActionInterrupted`.
    - ``output``: call with each line the action prints, as it prints it.
    - ``output_lines``: where given, call it instead with a batch of lines (in order) to spare
      a call per line; :meth:`write_output` picks whichever is there.
    - ``registry_credentials``: credentials for an image's registry, or ``None``.
    - ``pull_progress``: call with a :class:`~tinklet_core.model.PullProgress` when a pull
      starts (``STARTED``), as it goes (``PROGRESS``: bytes or layers from the engine's pull
      stream) and when it ends (``FINISHED`` or ``FAILED``); cheap and never blocks (observers
      get it from their own thread). Not calling it is fine: no pull is then shown or timed.
    """

    action: Action
    settings: RuntimeSettings
    deadline: float | None
    cancelled: threading.Event
    output: Callable[[str], None]
    registry_credentials: Callable[[str], RegistryCredentials | None]
    log: logging.Logger
    pull_progress: Callable[[PullProgress], None] = field(default=lambda progress: None)
    output_lines: Callable[[list[str]], None] | None = None

    def write_output(self, lines: list[str]) -> None:
        """Hand a batch of output lines on: to ``output_lines`` when set, else line by line."""
        if self.output_lines is not None:
            self.output_lines(lines)
        else:
            _each(self.output, lines)

    def seconds_left(self) -> float | None:
        """Seconds until the deadline (never negative), or ``None`` without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class WorkflowEnvironment:
    """The workflow whose environment a runtime prepares or cleans up."""

    workflow_id: str
    agent_id: str
    first_action: Action
    registry_credentials: Callable[[str], RegistryCredentials | None]


class WaitResult(enum.Enum):
    """Why :func:`wait_for_exit` returned."""

    EXITED = "exited"
    TIMED_OUT = "timed out"
    CANCELLED = "cancelled"


def wait_for_exit(exited: threading.Event, context: ActionContext, poll: float = 0.1) -> WaitResult:
    """Block until ``exited`` is set, the action's deadline passes or tinklet shuts down.

    Runtimes run their blocking wait (and log stream) in a thread that sets ``exited``; this
    keeps deadline and shutdown handling in one place and independent of any client timeout.
    """
    while True:
        if exited.wait(poll):
            return WaitResult.EXITED
        if context.cancelled.is_set():
            return WaitResult.CANCELLED
        left = context.seconds_left()
        if left is not None and left <= 0:
            return WaitResult.TIMED_OUT


def normalise_registry(name: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``HOST:PORT/`` → ``HOST:PORT``."""
    host = name.strip()
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _DOCKER_HUB_ALIASES else host


def image_registry(image: str) -> str:
    """The registry host of an image reference, ``docker.io`` when the reference names none."""
    first, sep, _rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


class LineBatcher:
    """Turns a stream of byte chunks into batches of text lines, with bounded memory.

    Each chunk's complete lines go to ``emit_lines`` as one list (one call per chunk, not per
    line, so a fast writer costs a few calls per 100 KiB). A line longer than ``max_line`` is
    emitted in pieces (of at most ``max_line`` characters, or bytes while it is still
    unterminated), so an action that prints megabytes without a newline cannot grow the
    worker's memory and no logged line is longer than that.
    """

    def __init__(self, emit_lines: Callable[[list[str]], None], max_line: int = 16 * 1024) -> None:
        self._emit_lines = emit_lines
        self._max_line = max_line
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        """Add a chunk; emit every complete line in it."""
        data = self._pending + chunk if self._pending else chunk
        end = data.rfind(b"\n")
        lines: list[str] = []
        if end >= 0:
            lines = _decode(data[:end]).split("\n")
            data = data[end + 1 :]
            if max(map(len, lines)) > self._max_line:
                lines = [
                    line[at : at + self._max_line] for line in lines for at in _cuts(line, self._max_line)
                ]
        while len(data) >= self._max_line:
            lines.append(_decode(data[: self._max_line]))
            data = data[self._max_line :]
        self._pending = data
        if lines:
            self._emit_lines(lines)

    def close(self) -> None:
        """Emit what is left after the last newline."""
        if self._pending:
            self._emit_lines([_decode(self._pending)])
            self._pending = b""


def _cuts(line: str, size: int) -> range:
    """Where ``line`` is cut into pieces of at most ``size`` characters (an empty line: once)."""
    return range(0, max(len(line), 1), size)


def _decode(data: bytes) -> str:
    """Text of ``data``: invalid UTF-8 replaced, carriage returns before newlines dropped."""
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").removesuffix("\r")
    return text


class LineSplitter(LineBatcher):
    """A :class:`LineBatcher` that hands ``emit`` one line at a time."""

    def __init__(self, emit: Callable[[str], None], max_line: int = 16 * 1024) -> None:
        super().__init__(lambda lines: _each(emit, lines), max_line)


def _each(emit: Callable[[str], None], lines: list[str]) -> None:
    for line in lines:
        emit(line)
