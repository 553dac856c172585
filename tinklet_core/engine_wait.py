"""Waiting for a container engine that is not up yet, and telling that apart from a misconfiguration.

On a booting machine the worker and its engine (dockerd, containerd, Podman, an API server)
start side by side. A runtime that cannot reach its engine raises
:class:`~tinklet_core.errors.EngineNotReady` when waiting may fix it (nothing listens at its
address yet) and a plain :class:`~tinklet_core.errors.RuntimeUnavailable` when it cannot (the
socket path is a regular file, permission is refused, the option's value is malformed);
:func:`unreachable` makes that choice for a runtime. Worker mode opens its runtime through
:func:`open_when_ready`, which retries the first kind with backoff and stops at once on shutdown.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from tinklet_core.backoff import Backoff
from tinklet_core.errors import ActionInterrupted, EngineNotReady, RuntimeUnavailable
from tinklet_core.redaction import described_value

T = TypeVar("T")

#: Socket errors that mean "nothing answers there yet" rather than "this can never work".
NOT_YET = frozenset(
    {
        errno.ENOENT,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
        errno.EADDRNOTAVAIL,
        errno.EPIPE,
        errno.EAGAIN,
    }
)
UNIX_SCHEMES = ("unix://", "http+unix://")
MIN_WAIT = 0.2


def open_when_ready(
    open_runtime: Callable[[], T], stop: threading.Event | None, max_backoff: float, log: logging.Logger
) -> T:
    """``open_runtime()``, retried with backoff (at most ``max_backoff`` s apart) while it raises
    :class:`EngineNotReady`; logs the wait once and the recovery once.

    Any other error is raised at once. Raises :class:`ActionInterrupted` as soon as ``stop`` is
    set while waiting. Without ``stop`` (``tinklet run``: a person is watching) nothing is
    waited for: the first error is raised.
    """
    if stop is None:
        return open_runtime()
    backoff = Backoff(MIN_WAIT, max_backoff)
    waited = False
    while True:
        if stop.is_set():
            raise ActionInterrupted("stopped while waiting for the container engine")
        try:
            runtime = open_runtime()
        except EngineNotReady as exc:
            if not waited:
                log.warning("%s; waiting for it (retrying at most %g s apart)", exc, max_backoff)
                waited = True
            stop.wait(backoff.next_delay())
            continue
        if waited:
            log.info("the container engine answers now; asking for work")
        return runtime


def unreachable(message: str, url: str, cause: BaseException | None = None) -> RuntimeUnavailable:
    """The error for an engine at ``url`` that did not answer, with ``message`` as its line.

    :class:`RuntimeUnavailable` (a misconfiguration) when ``url`` names a unix socket path that
    exists but is not a socket or that tinklet may not open, or when ``cause`` is not a
    connection failure (a malformed URL, an unexpected answer); :class:`EngineNotReady`
    otherwise (no socket yet, connection refused, host unreachable, a 5xx answer).
    """
    fault = socket_fault(url)
    if fault is not None:
        return RuntimeUnavailable(f"{message} ({fault}; waiting cannot fix that)")
    if cause is None or not_up_yet(cause):
        return EngineNotReady(message)
    return RuntimeUnavailable(message)


def socket_fault(url: str) -> str | None:
    """Why the unix socket path in ``url`` can never be an engine's socket, or ``None`` (not a
    unix URL, no such path yet, or a socket this process may use)."""
    path = next((url[len(scheme) :] for scheme in UNIX_SCHEMES if url.startswith(scheme)), None)
    if path is None:
        return None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:  # a path component that is a file, a directory tinklet may not enter
        return f"{described_value('socket', path, path=True)}: {exc.strerror}"
    if not stat.S_ISSOCK(mode):
        return f"{described_value('socket', path, path=True)} is not a socket"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{described_value('socket', path, path=True)}: permission denied"
    return None


def not_up_yet(exc: BaseException) -> bool:
    """True when ``exc`` (or an error it wraps) says that nothing answers yet: a refused or
    timed-out connection, a missing socket, an unresolvable or unreachable host."""
    for error in _wrapped(exc, set()):
        if isinstance(error, socket.gaierror | TimeoutError):
            return True
        if isinstance(error, OSError) and error.errno in NOT_YET:
            return True
        if isinstance(error, ConnectionError) and error.errno is None:
            return True
    return False


def _wrapped(exc: BaseException, seen: set[int]) -> Iterator[BaseException]:
    """``exc`` and every error it wraps (causes, contexts, ``reason`` and arguments), once each."""
    if id(exc) in seen:
        return
    seen.add(id(exc))
    yield exc
    for linked in (exc.__cause__, exc.__context__, getattr(exc, "reason", None), *exc.args):
        if isinstance(linked, BaseException):
            yield from _wrapped(linked, seen)
