"""What the shared container runtime needs from an OCI-style engine, and how engines fail.

An engine adapter (Docker, Podman, a third party's containerd…) implements
:class:`ContainerEngine` with its own client library and reports every failure as one
:class:`EngineFailure` line; :func:`failing_as` words those lines the same way for every engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from tinklet_core.containers.privilege import refused_privilege
from tinklet_core.containers.spec import ContainerSpec
from tinklet_core.errors import TinkletError
from tinklet_core.model import RegistryCredentials
from tinklet_core.runtime_helpers import innermost_reason, one_line, without_secret

ACTION_LABEL = "tinklet.action"
AGENT_LABEL = "tinklet.agent"

#: HTTP statuses of a kill or remove that found the container already stopped or gone.
ALREADY_GONE = (404, 409)

#: Stream numbers of the frames an engine's output is split into.
STDOUT = 1
STDERR = 2


class EngineFailure(TinkletError):
    """An engine call failed; ``str()`` is the one-line reason a FAILED Outcome carries."""


class EngineUnreachable(EngineFailure):
    """The engine (its daemon, socket or service) did not answer: the connection was refused,
    reset or broken. Not the action's fault: the runtime waits for the engine to come back."""


class ContainerGone(EngineFailure):
    """The engine no longer knows the container (it was removed behind tinklet's back)."""


class PrivilegeRefused(EngineFailure):
    """The host refused the capabilities or devices the container asks for (the OCI runtime's
    "unable to apply caps: operation not permitted"); the runtime adds the way out
    (:func:`tinklet_core.containers.privilege.refusal_advice`)."""


def engine_failure(words: str) -> EngineFailure:
    """The failure an engine's error ``words`` (already ``"WHAT: reason"``) is:
    :class:`PrivilegeRefused` when they are a refused privilege
    (:func:`~tinklet_core.containers.privilege.refused_privilege`), else :class:`EngineFailure`.
    Every engine adapter maps the errors of its create and start calls through it."""
    return PrivilegeRefused(words) if refused_privilege(words) else EngineFailure(words)


class PullFailure(EngineFailure):
    """The engine answered but the pull failed; ``reason`` is the engine's (or registry's) own
    words, which :func:`tinklet_core.pull_failure.pull_failure_message` turns into the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: Called with each decoded event of an engine's pull stream (progress, layer done…).
PullEvents = Callable[[Mapping[str, Any]], None]


class OutputStream(Protocol):
    """A container's attached output, closable from another thread."""

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """``(STDOUT or STDERR, payload)`` frames as the container writes; ends at its exit."""
        ...

    def close(self) -> None:
        """Stop the stream: an iteration blocked in another thread ends."""


class ContainerEngine(Protocol):
    """One engine connection. Every method fails with :class:`EngineFailure` only."""

    def image_present(self, image: str) -> bool:
        """True when the engine has ``image`` locally."""
        ...

    def image_user(self, image: str) -> str:
        """The ``USER`` of the local ``image``'s config (``""`` when unset: root)."""
        ...

    def ping(self) -> None:
        """Return when the engine answers; :class:`EngineUnreachable` when it does not."""

    def pull(
        self, image: str, credentials: RegistryCredentials | None, on_event: PullEvents | None = None
    ) -> None:
        """Pull ``image`` (anonymously without ``credentials``), handing each decoded stream event
        to ``on_event``; :class:`PullFailure` with the registry's words when the pull fails."""

    def create(self, spec: ContainerSpec) -> str:
        """Create the container; its id."""
        ...

    def attach(self, container: str) -> OutputStream:
        """Attach to stdout and stderr of a created container, before it starts."""
        ...

    def start(self, container: str) -> None:
        """Start the container."""

    def wait(self, container: str) -> int:
        """Block until the container exits; its exit code."""
        ...

    def exit_code(self, container: str) -> int | None:
        """The exit code of a container that exited, ``None`` while it runs;
        :class:`ContainerGone` when the engine does not know it."""
        ...

    def logs(self, container: str) -> OutputStream:
        """The container's complete output so far as frames (not followed)."""
        ...

    def oom_killed(self, container: str) -> bool:
        """True when the out-of-memory killer ended the container (False if unknown)."""
        ...

    def kill(self, container: str) -> None:
        """SIGKILL the container; one already stopped or gone is fine."""

    def remove(self, container: str) -> None:
        """Remove the container and its anonymous volumes; one already gone is fine."""

    def containers(self, agent_id: str | None = None) -> list[str]:
        """Names of containers carrying :data:`ACTION_LABEL` (only ``agent_id``'s if given)."""
        ...

    def close(self) -> None:
        """Close the connection."""


def label_filter(agent_id: str | None) -> list[str]:
    """The label filter that finds tinklet's containers, only ``agent_id``'s when given."""
    return [ACTION_LABEL] if agent_id is None else [ACTION_LABEL, f"{AGENT_LABEL}={agent_id}"]


def pull_error(event: Any) -> str | None:
    """The error a pull progress event reports (``{"error": …, "errorDetail": {"message": …}}``)."""
    if not isinstance(event, dict):
        return None
    detail = event.get("errorDetail")
    message = detail.get("message") if isinstance(detail, dict) else None
    return str(message or event.get("error") or "") or None


@contextmanager
def failing_as(
    what: str,
    secret: str | None,
    *,
    api_errors: tuple[type[BaseException], ...],
    connection_errors: tuple[type[BaseException], ...],
    service: str,
    tolerate: tuple[int, ...] = (),
    gone: bool = False,
    http_status: bool = False,
) -> Iterator[None]:
    """Turn a client library's exceptions inside the block into ``EngineFailure("WHAT: reason")``.

    An API error keeps the engine's words (``explanation`` when it has one, after ``HTTP N:``
    with ``http_status``); one whose HTTP ``status_code`` is in ``tolerate`` ends the block
    quietly; a 404 is :class:`ContainerGone` when ``gone`` is set. A connection error (also an
    API error with no HTTP status that a connection error caused, as podman-py raises) is
    :class:`EngineUnreachable` and says ``SERVICE is not reachable`` with the operating system's
    words. ``secret`` is masked.
    """
    try:
        yield
    except api_errors as exc:
        status = getattr(exc, "status_code", None)
        cause = exc.__cause__
        if status is None and cause is not None and isinstance(cause, (*connection_errors, OSError)):
            words = f"{service} is not reachable: {innermost_reason(cause)}"
            raise EngineUnreachable(without_secret(f"{what}: {words}", secret)) from None
        if status in tolerate:
            return
        words = one_line(getattr(exc, "explanation", None) or exc)
        if http_status and status is not None:
            words = f"HTTP {status}: {words}"
        message = without_secret(f"{what}: {words}", secret)
        raise (ContainerGone(message) if gone and status == 404 else engine_failure(message)) from None
    except connection_errors as exc:
        words = f"{service} is not reachable: {innermost_reason(exc)}"
        raise EngineUnreachable(without_secret(f"{what}: {words}", secret)) from None
