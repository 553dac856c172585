"""Where to pull a registry's images from, as containerd's ``certs.d`` directory says.

containerd's resolver reads ``CERTS_DIR/HOST[:PORT]/hosts.toml`` (default ``CERTS_DIR``:
``/etc/containerd/certs.d``; ``_default/hosts.toml`` for registries without their own): every
``[host."URL"]`` table is a mirror tried in order, then ``server`` (default ``https://HOST``, for
Docker Hub ``https://registry-1.docker.io``). Per host: ``capabilities`` (only hosts that can
``pull`` are used), ``ca`` (CA files), ``skip_verify``, ``client`` (certificate and key),
``header`` (extra headers) and ``override_path`` (the URL's path replaces ``/v2``). Without a
hosts.toml, Docker's layout in the same directory is honoured: ``*.crt`` are CAs, ``*.cert`` with
its ``*.key`` a client certificate. A plain ``http://`` host is an insecure registry.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinklet_containerd.reference import DOCKER_HUB, DOCKER_HUB_ENDPOINT
from tinklet_core.containers.engine import EngineFailure

DEFAULT_CERTS_DIR = "/etc/containerd/certs.d"


@dataclass(frozen=True)
class RegistryHost:
    """One place to pull from: ``url`` is ``scheme://host[:port]`` and the API path."""

    url: str
    ca_files: tuple[str, ...] = ()
    skip_verify: bool = False
    client_certs: tuple[tuple[str, str | None], ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def host(self) -> str:
        """``host[:port]`` of the URL."""
        return self.url.split("://", 1)[1].split("/", 1)[0]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _host_from_table(url: str, table: dict[str, Any], base: Path) -> RegistryHost | None:
    capabilities = table.get("capabilities", ["pull", "resolve", "push"])
    if "pull" not in capabilities:
        return None
    url = url.rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    if not table.get("override_path"):
        url += "/v2"
    clients: list[tuple[str, str | None]] = []
    for entry in _as_list(table.get("client")):
        pair = _as_list(entry)
        clients.append((str(base / pair[0]), str(base / pair[1]) if len(pair) > 1 else None))
    return RegistryHost(
        url=url,
        ca_files=tuple(str(base / ca) for ca in _as_list(table.get("ca"))),
        skip_verify=bool(table.get("skip_verify", False)),
        client_certs=tuple(clients),
        headers=tuple(
            (str(k), str(v)) for k, values in (table.get("header") or {}).items() for v in _as_list(values)
        ),
    )


def default_server(registry: str) -> str:
    """The registry's own API endpoint when nothing configures it."""
    return f"https://{DOCKER_HUB_ENDPOINT}" if registry == DOCKER_HUB else f"https://{registry}"


def _docker_layout(directory: Path, url: str) -> RegistryHost:
    cas = tuple(str(path) for path in sorted(directory.glob("*.crt")))
    clients = tuple(
        (str(cert), str(cert.with_suffix(".key")) if cert.with_suffix(".key").exists() else None)
        for cert in sorted(directory.glob("*.cert"))
    )
    return RegistryHost(url=f"{url}/v2", ca_files=cas, client_certs=clients)


def registry_hosts(registry: str, certs_dir: str = DEFAULT_CERTS_DIR) -> list[RegistryHost]:
    """The hosts to try for ``registry``, in order; :class:`EngineFailure` for a broken file."""
    root = Path(certs_dir)
    directory = root / registry
    config = directory / "hosts.toml"
    if not config.is_file():
        default = root / "_default" / "hosts.toml"
        if default.is_file():
            directory, config = default.parent, default
        else:
            return [_docker_layout(directory, default_server(registry))]
    try:
        document = tomllib.loads(config.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EngineFailure(f"cannot read {config}: {exc}") from None
    hosts = [
        host
        for url, table in (document.get("host") or {}).items()
        if (host := _host_from_table(url, table or {}, directory)) is not None
    ]
    server = str(document.get("server") or default_server(registry))
    top: dict[str, Any] = {
        key: document[key]
        for key in ("ca", "skip_verify", "client", "header", "override_path")
        if key in document
    }
    own = _host_from_table(server, top, directory)
    if own is not None:
        hosts.append(own)
    return hosts
