"""The one error the podman runtime passes between its modules, and how it words reasons.

:class:`PodmanFailure` never leaves ``tinklet_execute_action``: the runtime turns it into a FAILED
:class:`~tinklet_core.model.Outcome` whose reason is ``str(failure)``, one line with no secret.
"""

from __future__ import annotations

from tinklet_core.errors import TinkletError

_MAX_REASON = 400


class PodmanFailure(TinkletError):
    """A call to the Podman service failed; ``str()`` is the one-line reason an Outcome carries."""


def one_line(text: object, limit: int = _MAX_REASON) -> str:
    """``text`` with runs of whitespace collapsed to one space, cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def without_secret(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` masked: a password is never reported."""
    return text.replace(secret, "***") if secret else text


def innermost_reason(exc: BaseException) -> str:
    """The operating system's words buried in a connection error, else the error's own text.

    requests wraps ``ConnectionRefusedError`` / ``FileNotFoundError`` several layers deep; the
    user wants "Connection refused", not the wrapper's repr.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return one_line(current.strerror)
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return one_line(str(exc) or type(exc).__name__)
