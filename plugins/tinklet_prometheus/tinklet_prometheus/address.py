"""Reading ``--metrics-address``."""

from __future__ import annotations

ADDRESS_FORM = "--metrics-address must be HOST:PORT (for example 0.0.0.0:9464 or [::1]:9464)"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for IPv6; an empty host means every interface) as
    ``(host, port)``; anything else is a ``ValueError`` that does not echo the value."""
    host, colon, port_text = text.strip().rpartition(":")
    if not colon or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(ADDRESS_FORM)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(ADDRESS_FORM)
    return host or "0.0.0.0", int(port_text)
