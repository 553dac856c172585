"""TLS settings for the Tink connection, checked at start, and the core's channel-credentials hook.

The rule: TLS never silently downgrades. Giving any of ``--tls-ca``, ``--tls-cert``,
``--tls-key`` or ``--tls-server-name`` turns TLS on (there is no way to send them over a
plaintext connection). Before tinklet connects, :func:`load_tls` reads and checks every file:
an empty or unparsable CA, certificate or key, an encrypted key, or a key that does not match
its certificate is one :class:`~tinklet_core.errors.ConfigError` line (exit 2), never a retry
loop of "Failed to create security handshaker". ``--tls-ca`` may be a path, a ``file://`` URL
or an ``http(s)://`` URL (old Tink servers publish their CA at ``http://HOST:42114/cert``);
a URL is fetched at start with a timeout and retried with backoff while the server is
unreachable; anything but a readable PEM CA fails closed. A key's text never appears in an
error: values of ``--tls-key`` are never echoed (see :mod:`tinklet_core.redaction`).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from tinklet_core.errors import ActionInterrupted, ConfigError
from tinklet_core.markers import hookimpl
from tinklet_core.redaction import described_value

if TYPE_CHECKING:  # ssl, socket and urllib.request are imported where TLS is used, not at start
    import ssl

    import grpc

log = logging.getLogger("tinklet.tls")
CA_FETCH_TIMEOUT = 5.0
CA_FETCH_MAX_BYTES = 1024 * 1024
_FIRST_RETRY = 0.5


@dataclass(frozen=True)
class TlsSettings:
    """How to secure the gRPC connection: off, system roots, a CA (file or URL), or mTLS.

    ``enabled`` is true when ``--tls`` or any other TLS option was given. ``ca_pem``,
    ``cert_pem`` and ``key_pem`` are filled by :func:`load_tls` once the files were read and
    checked; the key never shows in ``repr``.
    """

    enabled: bool = False
    insecure: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    ca_url: str | None = None
    ca_pem: bytes | None = field(default=None, repr=False)
    cert_pem: bytes | None = field(default=None, repr=False)
    key_pem: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.implied_by:
            object.__setattr__(self, "enabled", True)

    @property
    def implied_by(self) -> tuple[str, ...]:
        """The TLS options given, each of which turns TLS on by itself."""
        given = {
            "--tls-ca": self.ca_file is not None or self.ca_url is not None,
            "--tls-cert": self.cert_file is not None,
            "--tls-key": self.key_file is not None,
            "--tls-server-name": bool(self.server_name),
        }
        return tuple(name for name, present in given.items() if present)


class CaLocation(TypedDict, total=False):
    """Where ``--tls-ca`` points: ``TlsSettings`` keyword arguments."""

    ca_file: Path | None
    ca_url: str


def ca_location(value: str | None, to_path: Callable[[str], Path | None]) -> CaLocation:
    """``TlsSettings`` fields for a ``--tls-ca`` value: ``ca_url`` for http(s), else ``ca_file``.

    A ``file://`` URL becomes its path; ``to_path`` expands anything else (``~``…).
    """
    if not value:
        return {}
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme in ("http", "https"):
        return {"ca_url": value.strip()}
    if parsed.scheme == "file":
        from urllib.request import url2pathname

        return {"ca_file": Path(url2pathname(parsed.path))}
    return {"ca_file": to_path(value)}


def load_tls(
    tls: TlsSettings,
    stop: threading.Event,
    max_backoff: float = 5.0,
    fetch: Callable[[str], bytes] | None = None,
    address: str | None = None,
) -> TlsSettings:
    """``tls`` with its CA, certificate and key read and checked; one-line ConfigError if not.

    A CA URL is fetched (retried with backoff while unreachable, :class:`ActionInterrupted`
    when ``stop`` is set meanwhile). With ``insecure``, the certificate the server at
    ``address`` presents becomes the CA (:func:`pin_presented_certificate`).
    """
    if not tls.enabled:
        return tls
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ConfigError("--tls-cert and --tls-key must be given together")
    ca_pem: bytes | None = None
    if tls.insecure and address:
        ca_pem, name = pin_presented_certificate(address, tls.server_name, stop, max_backoff)
        tls = dataclasses.replace(tls, server_name=name)
    elif tls.ca_url is not None:
        ca_pem = fetch_ca(tls.ca_url, stop, max_backoff, fetch or fetch_url)
        _check_certificates(ca_pem, f"the CA fetched from --tls-ca {_url_shown(tls.ca_url)}")
    else:
        ca_pem = _read(tls.ca_file, "--tls-ca", "tls_ca")
        if ca_pem is not None:
            _check_certificates(ca_pem, f"--tls-ca file {described_value('tls_ca', str(tls.ca_file))}")
    cert_pem = _read(tls.cert_file, "--tls-cert", "tls_cert")
    key_pem = _read(tls.key_file, "--tls-key", "tls_key")
    if cert_pem is not None and key_pem is not None:
        _check_certificates(cert_pem, f"--tls-cert file {described_value('tls_cert', str(tls.cert_file))}")
        _check_key_pair(cert_pem, key_pem)
    return dataclasses.replace(tls, ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem)


def _read(path: Path | None, option: str, key: str) -> bytes | None:
    """The file's bytes; unreadable or empty is a ConfigError naming the option (the path only
    when it is safe to show: a key pasted in place of a path is never echoed)."""
    if path is None:
        return None
    shown = described_value(key, str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {option} file {shown}: {exc.strerror or type(exc).__name__}"
        ) from None
    if not data.strip():
        raise ConfigError(f"{option} file {shown} is empty")
    return data


def _check_certificates(pem: bytes, what: str) -> None:
    """At least one PEM certificate, and every one of them parsable."""
    text = pem.decode("ascii", "replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{what} holds no PEM certificate")
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError):
        raise ConfigError(f"{what} is not a readable PEM certificate") from None


def _check_key_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """The key is a readable, unencrypted PEM private key that matches the certificate."""
    text = key_pem.decode("ascii", "replace")
    if "PRIVATE KEY-----" not in text:
        raise ConfigError("--tls-key file holds no PEM private key")
    if "ENCRYPTED" in text:
        raise ConfigError("--tls-key file is encrypted; gRPC needs an unencrypted private key")
    import ssl
    import tempfile

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with tempfile.TemporaryDirectory(prefix="tinklet-tls-") as directory:
        cert_path, key_path = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        try:
            context.load_cert_chain(cert_path, key_path, password=_no_password)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
                raise ConfigError("--tls-key does not match the certificate in --tls-cert") from None
            raise ConfigError("--tls-key file is not a readable PEM private key") from None


def _no_password() -> str:
    raise ConfigError("--tls-key file is encrypted; gRPC needs an unencrypted private key")


def _url_shown(url: str) -> str:
    """The URL without any ``user:password@`` part."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def fetch_url(url: str) -> bytes:
    """GET ``url`` (system roots for https) with :data:`CA_FETCH_TIMEOUT`; at most 1 MiB."""
    from urllib.request import urlopen

    with urlopen(url, timeout=CA_FETCH_TIMEOUT) as response:
        return bytes(response.read(CA_FETCH_MAX_BYTES))


def fetch_ca(
    url: str, stop: threading.Event, max_backoff: float, fetch: Callable[[str], bytes] = fetch_url
) -> bytes:
    """The body at ``url``, retried with jittered backoff while the server is unreachable or
    answers 5xx; a 4xx answer or an https certificate failure is a ConfigError (fail closed)."""
    import ssl
    from urllib.error import HTTPError, URLError

    shown = _url_shown(url)
    delay = _FIRST_RETRY
    warned = False
    while True:
        try:
            body = fetch(url)
        except HTTPError as exc:
            if exc.code < 500:
                raise ConfigError(f"--tls-ca {shown} answered HTTP {exc.code}") from None
            problem = f"HTTP {exc.code}"
        except URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                raise ConfigError(f"--tls-ca {shown}: TLS failed: {_ssl_reason(exc.reason)}") from None
            problem = _reason_words(exc.reason)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ssl.SSLError):
                raise ConfigError(f"--tls-ca {shown}: TLS failed: {_ssl_reason(exc)}") from None
            problem = _reason_words(exc)
        else:
            if warned:
                log.info("fetched the TLS CA from %s", shown)
            return body
        if not warned:
            log.warning("cannot fetch the TLS CA from %s (%s); retrying", shown, problem)
            warned = True
        if stop.wait(delay * random.uniform(0.5, 1.0)):
            raise ActionInterrupted(f"stopped while fetching the TLS CA from {shown}")
        delay = min(delay * 2, max(max_backoff, _FIRST_RETRY))


def _reason_words(reason: object) -> str:
    if isinstance(reason, TimeoutError):  # socket.timeout is TimeoutError
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _ssl_reason(exc: ssl.SSLError) -> str:
    verify = getattr(exc, "verify_message", None)
    return str(verify or exc.reason or exc)


class CoreChannelCredentials:
    """The core's ``tinklet_grpc_channel_credentials``: system roots, CA (file or URL), mTLS."""

    @hookimpl(trylast=True)
    def tinklet_grpc_channel_credentials(self, tls: TlsSettings) -> grpc.ChannelCredentials:
        """Build credentials from the TLS settings; files are read and checked by :func:`load_tls`
        first when the caller has not (the key is read, never logged)."""
        import grpc

        if tls.enabled and (tls.ca_pem, tls.cert_pem, tls.key_pem) == (None, None, None):
            tls = load_tls(tls, threading.Event())
        return grpc.ssl_channel_credentials(
            root_certificates=tls.ca_pem,
            private_key=tls.key_pem,
            certificate_chain=tls.cert_pem,
        )


def verification_failure(address: str, tls: TlsSettings, timeout: float = 5.0) -> str | None:
    """Why the server at ``address`` fails certificate verification with these settings, in the
    TLS library's words (``certificate has expired``, ``Hostname mismatch…``, ``unable to get
    local issuer certificate``), or ``None`` when it verifies or cannot be reached.

    gRPC reports every verification failure as ``CERTIFICATE_VERIFY_FAILED``; a transport calls
    this after such a failure to name the real reason.
    """
    host, _sep, port = address.rpartition(":")
    if not host or not port.isdigit() or tls.insecure:
        return None
    import socket
    import ssl

    context = ssl.create_default_context()
    if tls.ca_pem is not None:
        context = ssl.create_default_context(cadata=tls.ca_pem.decode("ascii", "replace"))
    server_name = tls.server_name or host.strip("[]")
    try:
        with (
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc.reason or "certificate verification failed")
    except (OSError, ValueError):
        return None


# --- TLS without verification (--tls-insecure, TINKERBELL_INSECURE_TLS) ---


def pin_presented_certificate(
    address: str, server_name: str | None, stop: threading.Event, max_backoff: float
) -> tuple[bytes, str | None]:
    """The certificate the server at ``address`` presents (PEM), to trust as the only CA of
    this connection, and the name gRPC must then expect: ``server_name`` when given, else the
    address's host when the certificate names it, else the certificate's first name.

    Python's gRPC cannot skip verification; trusting the presented certificate for this
    connection is the same trust (none) with gRPC's own checks still running. Retried with
    backoff while the server is unreachable; :class:`ActionInterrupted` when ``stop`` is set.
    """
    host, _sep, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("--tink: expected HOST:PORT for --tls-insecure")
    host = host.strip("[]")
    delay = _FIRST_RETRY
    warned = False
    while True:
        try:
            pem, names = presented_certificate(host, int(port))
        except (OSError, ValueError) as exc:
            if not warned:
                log.warning("cannot reach the tink server %s for its certificate (%s); retrying",
                            address, _reason_words(exc))  # fmt: skip
                warned = True
            if stop.wait(delay * random.uniform(0.5, 1.0)):
                raise ActionInterrupted(f"stopped while reaching the tink server {address}") from None
            delay = min(delay * 2, max(max_backoff, _FIRST_RETRY))
            continue
        if server_name:
            return pem, server_name
        return pem, (None if host in names or not names else names[0])


def presented_certificate(host: str, port: int, timeout: float = CA_FETCH_TIMEOUT) -> tuple[bytes, list[str]]:
    """The leaf certificate ``host:port`` presents, as PEM, unverified, and the names in it
    (DNS and IP subject alternative names, then the common name)."""
    import socket
    import ssl

    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    unverified.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        unverified.wrap_socket(raw, server_hostname=host) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    pem = ssl.DER_cert_to_PEM_cert(der).encode("ascii")
    # A second handshake that trusts only this certificate decodes it (getpeercert() is empty
    # without verification).
    pinned = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pinned.check_hostname = False
    pinned.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    pinned.load_verify_locations(cadata=pem.decode("ascii"))
    pinned.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        pinned.wrap_socket(raw, server_hostname=host) as conn,
    ):
        decoded: dict[str, Any] = dict(conn.getpeercert() or {})
    names = [str(pair[1]) for pair in decoded.get("subjectAltName", ()) if pair[0] in ("DNS", "IP Address")]
    for rdn in decoded.get("subject", ()):
        names.extend(str(pair[1]) for pair in rdn if pair[0] == "commonName")
    return pem, names
