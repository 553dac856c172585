"""TLS settings for the Tink connection and the core's channel-credentials hook."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tinklet_core.errors import ConfigError
from tinklet_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import grpc


@dataclass(frozen=True)
class TlsSettings:
    """How to secure the gRPC connection: off, system roots, a CA file, or mTLS."""

    enabled: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


class CoreChannelCredentials:
    """The core's ``tinklet_grpc_channel_credentials``: system roots, CA file, mTLS."""

    @hookimpl(trylast=True)
    def tinklet_grpc_channel_credentials(self, tls: TlsSettings) -> grpc.ChannelCredentials:
        """Build credentials from the TLS settings; the key is read, never logged."""
        import grpc

        if (tls.cert_file is None) != (tls.key_file is None):
            raise ConfigError("--tls-cert and --tls-key must be given together")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(tls.ca_file, "TLS CA file"),
            private_key=_read(tls.key_file, "TLS key file"),
            certificate_chain=_read(tls.cert_file, "TLS certificate file"),
        )
