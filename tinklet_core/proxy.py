"""The HTTP proxy tinklet's actions and pulls use: ``--http-proxy``, ``--https-proxy``, ``--no-proxy``.

:class:`ProxySettings` is read once by :mod:`tinklet_core.config` (flags, ``TINKLET_*``, the config
file, then the usual ``HTTP_PROXY``/``http_proxy``… variables). Every action gets it in its
environment in both spellings (tools differ: curl and wget read lowercase, others uppercase),
unless the action sets that variable itself (:func:`with_proxy_defaults`). Proxy URLs may hold a
password, so nothing here ever puts a value into a log line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

#: The variables, in their uppercase spelling, in the order they are set.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
#: Where ``docker info`` reports the daemon's own proxy for each variable.
DAEMON_FIELDS = {"HTTP_PROXY": "HttpProxy", "HTTPS_PROXY": "HttpsProxy", "NO_PROXY": "NoProxy"}


@dataclass(frozen=True)
class ProxySettings:
    """The proxy for plain HTTP, for HTTPS, and the hosts reached directly (``""``: not set).
    ``repr`` never shows the URLs (they may hold a password)."""

    http: str = field(default="", repr=False)
    https: str = field(default="", repr=False)
    no_proxy: str = field(default="", repr=False)

    def values(self) -> dict[str, str]:
        """The variables that are set, uppercase names: ``{"HTTP_PROXY": …}``."""
        pairs = zip(PROXY_VARIABLES, (self.http, self.https, self.no_proxy), strict=True)
        return {name: value for name, value in pairs if value}

    def environment(self) -> tuple[tuple[str, str], ...]:
        """The variables that are set, each in upper and lower case."""
        pairs = self.values().items()
        return tuple((spelling, value) for name, value in pairs for spelling in (name, name.lower()))


def with_proxy_defaults(
    env: tuple[tuple[str, str], ...], proxy: ProxySettings
) -> tuple[tuple[str, str], ...]:
    """``env`` followed by the proxy variables it does not set itself. A variable the action sets
    in either spelling wins over both spellings of tinklet's (so ``HTTP_PROXY=`` switches the
    proxy off for that action)."""
    own = {key.upper() for key, _ in env}
    return env + tuple((key, value) for key, value in proxy.environment() if key.upper() not in own)


def masked_as_docker(value: str) -> str:
    """``value`` as ``docker info`` shows it: a URL's user and password become ``xxxxx``."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.username and not parts.password:
        return value
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"xxxxx:xxxxx@{host}"))


def daemon_differences(proxy: ProxySettings, info: Mapping[str, object]) -> list[str]:
    """The variables (uppercase names) whose value differs between tinklet's ``proxy`` and a
    Docker daemon's own settings as ``docker info`` reports them (credentials masked); never
    the values."""
    ours = {name: masked_as_docker(value) for name, value in proxy.values().items()}
    return [
        name for name, key in DAEMON_FIELDS.items() if ours.get(name, "") != str(info.get(key) or "")
    ]


def differences_warning(names: Iterable[str]) -> str | None:
    """The one-line warning for :func:`daemon_differences`, ``None`` when there are none."""
    listed = ", ".join(names)
    if not listed:
        return None
    return (
        f"the Docker daemon pulls images with its own proxy settings, and its {listed} differ from "
        "tinklet's (actions get tinklet's); set the daemon's proxy (its service environment, or "
        "\"proxies\" in daemon.json on Docker 23+) to match"
    )
