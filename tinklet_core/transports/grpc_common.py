"""What every gRPC transport shares: the channel, cancellable waits, status codes and error lines.

The v2 and v1 transports differ only in their messages and in the calls they make; how they
dial the server, give up on a call when tinklet stops, and word a failed call is here, once.
This module never logs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tinklet_core.errors import MalformedAction, TransportError
from tinklet_core.model import Action, Volume
from tinklet_core.workflow import parse_env, parse_volume

CANCEL_POLL_SECONDS = 0.05
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
    the image is empty or an entry cannot be used.
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
    action = dataclasses.replace(action, env=env, volumes=tuple(parsed))
    if not action.image:
        problems.insert(0, "'image' is empty")
    if problems:
        name = action.action_id or action.name or "(no id)"
        raise MalformedAction(f"action {name}: {'; '.join(problems)}", action=action)
    return action


def wait_unless_cancelled(future: grpc.Future, cancelled: threading.Event) -> bool:
    """Wait for ``future``; False as soon as ``cancelled`` is set first."""
    done = threading.Event()
    future.add_done_callback(lambda _future: done.set())
    while not done.wait(CANCEL_POLL_SECONDS):
        if cancelled.is_set():
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
    details = " ".join(str((details_method() if callable(details_method) else "") or "").split())
    if len(details) > _MAX_DETAILS:
        details = details[: _MAX_DETAILS - 1] + "\u2026"
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
