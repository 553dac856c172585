"""What the test Tink server is given and what it records, whatever protocol it speaks: its TLS
material, the reports it accepted and the calls it received, plus the small helpers every
protocol generation's servicer shares (aborting a call, reading a timestamp, a volume's text)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import grpc

from tinklet_core.model import State, Volume

PROTOCOLS = ("v2", "v1", "v1-legacy")
"""The protocols the test server can speak."""


@dataclass(frozen=True)
class ServerTls:
    """TLS for the test server: its certificate chain and key, and optionally a client CA.

    With ``client_ca`` set, clients must present a certificate signed by it (mTLS).
    """

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: Path, key: Path, client_ca: Path | None = None) -> ServerTls:
        """Read the PEM files (for instance those of :func:`~tinklet_core.testing.certs.make_test_pki`)."""
        return cls(
            cert_chain=Path(cert).read_bytes(),
            private_key=Path(key).read_bytes(),
            client_ca=Path(client_ca).read_bytes() if client_ca is not None else None,
        )


@dataclass(frozen=True)
class Report:
    """One status report the server accepted.

    ``execution_start``/``execution_stop`` are what the worker sent (timezone-aware UTC, or None
    when unsent); ``received_at`` is when this server received the report (UTC). A v1 report
    has no action id: ``action_id`` is ``TASK/ACTION``, ``agent_id`` the ``worker_id`` sent,
    ``seconds`` and ``created_at`` what it carried, and no execution times or duration.
    """

    workflow_id: str
    task_id: str
    action_id: str
    action_name: str
    state: State
    message: str
    execution_start: dt.datetime | None
    execution_stop: dt.datetime | None
    duration: str
    agent_id: str
    received_at: dt.datetime
    seconds: int | None = None
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class Call:
    """One call the server received: the method's name and when (``time.monotonic()``)."""

    method: str
    at: float


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    """End the call with ``code`` and ``details`` (typed as never returning, as it never does)."""
    context.abort(code, details)
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


def message_time(message: Any, name: str) -> dt.datetime | None:
    """The timestamp field ``name`` of ``message`` as an aware UTC datetime, or None when unset."""
    if not message.HasField(name):
        return None
    moment: dt.datetime = getattr(message, name).ToDatetime(tzinfo=dt.UTC)
    return moment


def volume_text(volume: Volume) -> str:
    """A volume as the Tink server sends it: ``SOURCE:TARGET`` with ``:ro`` when read-only."""
    return f"{volume.source}:{volume.target}" + (":ro" if volume.read_only else "")
