"""The one error the docker runtime passes between its modules, and how it words reasons.

:class:`DockerFailure` never leaves ``tinklet_execute_action``: the runtime turns it into a
FAILED :class:`~tinklet_core.model.Outcome` whose reason is ``str(failure)``, one line.
"""

from __future__ import annotations

from tinklet_core.errors import TinkletError

_MAX_REASON = 400


class DockerFailure(TinkletError):
    """A docker call failed; ``str()`` is the one-line reason an Outcome carries."""


def one_line(text: str, limit: int = _MAX_REASON) -> str:
    """``text`` with its whitespace runs collapsed to single spaces, cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def short_reason(exc: BaseException) -> str:
    """The most useful short words for a connection-level error.

    requests and urllib3 wrap the operating system's error several layers deep
    (``ConnectionError(ProtocolError('Connection aborted.', FileNotFoundError(2, …)))``); this
    digs out the innermost ``OSError`` that has a ``strerror`` ("No such file or directory",
    "Connection refused"), and otherwise returns the exception's own text on one line.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return one_line(current.strerror)
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return one_line(str(exc) or exc.__class__.__name__)


def without_secret(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` masked (a password must never be reported)."""
    return text.replace(secret, "***") if secret else text
