"""What the shared container runtime needs from an OCI-style engine, and how engines fail.

An engine adapter (Docker, Podman, a third party's containerd…) implements
:class:`ContainerEngine` with its own client library and reports every failure as one
:class:`EngineFailure` line; :func:`failing_as` words those lines the same way for every engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

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

    def pull(self, image: str, credentials: RegistryCredentials | None) -> None:
        """Pull ``image`` (anonymously without ``credentials``); the registry's words on failure."""

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
) -> Iterator[None]:
    """Turn a client library's exceptions inside the block into ``EngineFailure("WHAT: reason")``.

    An API error keeps the engine's words (``explanation`` when it has one); one whose HTTP
    ``status_code`` is in ``tolerate`` ends the block quietly. A connection error says
    ``SERVICE is not reachable`` with the operating system's words. ``secret`` is masked.
    """
    try:
        yield
    except api_errors as exc:
        if getattr(exc, "status_code", None) in tolerate:
            return
        words = one_line(getattr(exc, "explanation", None) or exc)
        raise EngineFailure(without_secret(f"{what}: {words}", secret)) from None
    except connection_errors as exc:
        words = f"{service} is not reachable: {innermost_reason(exc)}"
        raise EngineFailure(without_secret(f"{what}: {words}", secret)) from None
