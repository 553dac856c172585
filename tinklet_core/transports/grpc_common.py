"""What every gRPC transport shares: the channel, cancellable waits, status codes and error lines.

The v2 and v1 transports differ only in their messages and in the calls they make; how they
dial the server, give up on a call when tinklet stops, and word a failed call is here, once.
This module never logs.

Two bounds matter to a supervisor (PROTOCOL.md, issue 12):

- Stopping: every call is waited for through :func:`wait_unless_cancelled`. Once ``cancelled``
  is set a read is abandoned at once and a status report gets ``grace`` seconds more, then it
  is cancelled too, so tinklet exits on time whatever the server does.
- Reconnecting: gRPC's own reconnect backoff would add to the worker's (a call made while the
  channel waits to redial fails at once without trying). :class:`Connection` drops a channel
  that answered UNAVAILABLE, so the worker's next attempt dials afresh: the first call after
  the server is back comes within the worker's own backoff.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tinklet_core.action_checks import runnable
from tinklet_core.errors import TransportError
from tinklet_core.log_safe import loggable
from tinklet_core.model import Action, Volume
from tinklet_core.workflow import parse_env, parse_volume

CANCEL_POLL_SECONDS = 0.05
DEFAULT_REPORT_GRACE = 3.0
"""Seconds a status report in flight may still take once tinklet is stopping (``--report-grace``)."""
_MAX_DETAILS = 300
# A dead server must be noticed again soon after it comes back: cap gRPC's reconnect backoff
# (its default grows to two minutes, and calls fail fast while it waits).
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 1000),
    ("grpc.min_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", 5000),
)

NOTHING_NOW = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION})
"""Codes a Tink server uses for "no work for you now" (never "this is not my protocol")."""

READ_FATAL = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
"""Codes on a read call that asking again the same way will not heal."""

WRITE_FATAL = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED}
)
"""Codes on a status report that retrying cannot heal (the workflow is gone, the report is bad)."""


class UnsupportedProtocol(TransportError):
    """The server answered UNIMPLEMENTED: it does not speak this transport's protocol.

    Only this error tells ``--protocol auto`` to try the next generation; NOT_FOUND and
    FAILED_PRECONDITION ("no work now") never do.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


Stubs = TypeVar("Stubs")


class Connection(Generic[Stubs]):
    """The channel to one Tink server and the stubs made on it, dialled when first needed and
    again after a call answered UNAVAILABLE (see the module's docstring).

    Not thread-safe: a transport is used by the worker's thread only.
    """

    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None,
        server_name: str | None,
        make_stubs: Callable[[grpc.Channel], Stubs],
    ) -> None:
        self._target = target
        self._credentials = credentials
        self._server_name = server_name
        self._make_stubs = make_stubs
        self._channel: grpc.Channel | None = None
        self._stubs: Stubs | None = None

    @property
    def stubs(self) -> Stubs:
        """The stubs on the current channel, dialling a new one when there is none."""
        if self._channel is None or self._stubs is None:
            self._channel = open_channel(self._target, self._credentials, self._server_name)
            self._stubs = self._make_stubs(self._channel)
        return self._stubs

    def failed(self, exc: grpc.RpcError) -> None:
        """Note a failed call: after UNAVAILABLE the next call dials a new channel."""
        if status_code(exc) is grpc.StatusCode.UNAVAILABLE:
            self.close()

    def close(self) -> None:
        """Close the channel (cancelling any call still in flight); a later call dials again."""
        channel, self._channel, self._stubs = self._channel, None, None
        if channel is not None:
            channel.close()


def connection_options(settings: Any) -> dict[str, Any]:
    """The keyword arguments every gRPC transport takes from a transport-settings object
    (``credentials``, ``cancelled``, ``server_name``, ``report_grace``): each transport's
    ``from_settings`` adds only what is its own."""
    return {
        "credentials": settings.credentials,
        "cancelled": settings.cancelled,
        "server_name": settings.server_name,
        "report_grace": getattr(settings, "report_grace", DEFAULT_REPORT_GRACE),
    }


def abandoned(what: str, grace: float) -> TransportError:
    """The error for a call given up because tinklet is stopping (retryable: not delivered)."""
    return TransportError(
        f"{what}: abandoned because tinklet is stopping (no answer within {grace:g}s)", retryable=True
    )


def await_report(
    future: grpc.Future,
    what: str,
    *,
    cancelled: threading.Event,
    grace: float,
    connection: Connection[Any],
    target: str,
    tls: bool,
) -> None:
    """Wait for a status report's answer, for every protocol: raise :class:`TransportError` when
    it was abandoned (``grace`` seconds after ``cancelled`` is set; retryable) or refused (the
    connection is redialled after UNAVAILABLE; retryable unless the server will never take it)."""
    if not wait_unless_cancelled(future, cancelled, grace):
        raise abandoned(what, grace)
    try:
        future.result()
    except grpc.FutureCancelledError:
        raise abandoned(what, grace) from None
    except grpc.RpcError as exc:
        connection.failed(exc)
        raise write_error(what, target, exc, tls=tls) from None


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, server_name: str | None = None
) -> grpc.Channel:
    """A channel to ``target``: plaintext when ``credentials`` is None, else TLS.

    ``server_name`` overrides the name the server's certificate must carry. No client keepalive
    is configured: the Tink server (grpc-go) refuses pings more often than every 5 minutes.
    """
    options = list(_CHANNEL_OPTIONS)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


def checked_action(action: Action, *, environment: Iterable[str], volumes: Iterable[str]) -> Action:
    """``action`` with its wire ``environment`` (``KEY=VALUE``) and ``volumes`` parsed in.

    Raises :class:`MalformedAction` (carrying the ids and every entry that could be read) when
    an entry cannot be used or :func:`~tinklet_core.action_checks.runnable` refuses the action
    (no image, a negative timeout).
    """
    problems: list[str] = []
    try:
        env = parse_env(environment, where="environment")
    except ValueError as exc:
        env = ()
        problems.append(str(exc))
    parsed: list[Volume] = []
    for entry in volumes:
        try:
            parsed.append(parse_volume(entry))
        except ValueError as exc:
            problems.append(f"volumes: {exc}")
    return runnable(dataclasses.replace(action, env=env, volumes=tuple(parsed)), problems)


def wait_unless_cancelled(future: grpc.Future, cancelled: threading.Event, grace: float = 0.0) -> bool:
    """Wait for ``future``; once ``cancelled`` is set, at most ``grace`` seconds more.

    False when the call was abandoned: it is cancelled then (within about 0.05 s of
    ``cancelled`` with no grace).
    """
    done = threading.Event()
    future.add_done_callback(lambda _future: done.set())
    while not done.wait(CANCEL_POLL_SECONDS):
        if cancelled.is_set():
            if grace > 0 and done.wait(grace):
                return True
            future.cancel()
            return False
    return True


def collect_stream(call: Any, cancelled: threading.Event) -> list[Any] | None:
    """Read every message of a server-streaming ``call``; None if ``cancelled`` is set first.

    A watcher cancels the call within about 0.05 s of ``cancelled`` being set. gRPC errors of
    the call are raised as ``grpc.RpcError``.
    """
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(CANCEL_POLL_SECONDS):
            if cancelled.is_set():
                call.cancel()
                return

    watcher = threading.Thread(target=watch, name="tinklet-stream-watch", daemon=True)
    watcher.start()
    try:
        return list(call)
    except grpc.RpcError as exc:
        if cancelled.is_set() and status_code(exc) is grpc.StatusCode.CANCELLED:
            return None
        raise
    finally:
        finished.set()
        watcher.join()


def timestamp(moment: dt.datetime) -> Timestamp:
    """A protobuf Timestamp; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def status_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    """The gRPC status code of a failed call, if it has one."""
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


def read_error(what: str, target: str, exc: grpc.RpcError, *, tls: bool) -> TransportError:
    """The error for a failed read call: :class:`UnsupportedProtocol` for UNIMPLEMENTED."""
    line = describe(what, target, exc, tls=tls)
    code = status_code(exc)
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return UnsupportedProtocol(line)
    return TransportError(line, retryable=code not in READ_FATAL)


def write_error(what: str, target: str, exc: grpc.RpcError, *, tls: bool) -> TransportError:
    """The error for a failed status report; not retryable for :data:`WRITE_FATAL` codes."""
    return TransportError(describe(what, target, exc, tls=tls), retryable=status_code(exc) not in WRITE_FATAL)


def describe(what: str, target: str, exc: grpc.RpcError, *, tls: bool) -> str:
    """One line: the call, the server, the gRPC status, its details (shortened) and a hint."""
    code = status_code(exc)
    details_method = getattr(exc, "details", None)
    flat = " ".join(str((details_method() if callable(details_method) else "") or "").split())
    details = loggable(flat, _MAX_DETAILS)  # the server's words: escaped and bounded
    status = code.name if code is not None else "UNKNOWN"
    line = f"{what} on tink server {target} failed: {status}"
    if details:
        line += f": {details}"
    hint = _hint(details, tls)
    return f"{line} ({hint})" if hint else line


def _hint(details: str, tls: bool) -> str:
    """What a connection failure most likely means, in words; empty when nothing fits."""
    if "CERTIFICATE_VERIFY_FAILED" in details:
        return "the server's certificate is not signed by a trusted CA"
    if "Hostname Verification" in details or "is not in peer certificate" in details:
        return "the server's certificate does not name this address; a TLS server name may be needed"
    if "WRONG_VERSION_NUMBER" in details:
        return "the server does not seem to speak TLS"
    if "Socket closed" in details:
        if tls:
            return "the server closed the TLS connection: it may want a client certificate (mTLS)"
        return "the server closed the connection: it may expect TLS"
    return ""
