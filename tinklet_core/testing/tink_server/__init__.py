"""The in-process test Tink server (moved into a package; split by job in the next commit)."""

from tinklet_core.testing.tink_server.server import (
    DEFAULT_CLI_PORT,
    PROTOCOLS,
    Call,
    Report,
    ServerTls,
    TinkServer,
    main,
)

__all__ = ["DEFAULT_CLI_PORT", "PROTOCOLS", "Call", "Report", "ServerTls", "TinkServer", "main"]
