"""``/etc/resolv.conf``, ``/etc/hosts`` and ``/etc/hostname`` for an action's container.

containerd, unlike dockerd, writes none of them: the image's own (often none) would be all an
action sees. As the tink agent does, each container gets files of its own in its state
directory, bind-mounted writable:

- with the host's network: the host's resolver configuration and hosts file, and its name;
- with a network of its own: the host's resolver configuration without loopback name servers
  (they are not reachable from another network namespace; public ones stand in when none is
  left), localhost entries plus the container's address(es) once CNI gave them
  (:func:`add_addresses`), and a host name of its own.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")
#: Name servers for a container whose host only lists loopback ones (what the tink agent uses).
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
TARGETS = {"resolv.conf": "/etc/resolv.conf", "hosts": "/etc/hosts", "hostname": "/etc/hostname"}


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def private_resolv_conf(host: str) -> str:
    """``host``'s resolv.conf without loopback name servers (public ones if none is left)."""
    kept, servers = [], 0
    for line in host.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            if _is_loopback(words[1]):
                continue
            servers += 1
        kept.append(line)
    if not servers:
        kept += [f"nameserver {server}" for server in FALLBACK_NAMESERVERS]
    return "\n".join(kept) + "\n"


def write_dns_files(directory: Path, hostname: str, host_network: bool) -> dict[str, str]:
    """Write the three files into ``directory``; ``{container path: host file}`` to mount."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    resolv = _read(HOST_RESOLV_CONF)
    contents = {
        "resolv.conf": resolv if host_network else private_resolv_conf(resolv),
        "hosts": (_read(HOST_HOSTS) or LOCALHOST) if host_network else LOCALHOST,
        "hostname": f"{hostname}\n",
    }
    for name, text in contents.items():
        (directory / name).write_text(text)
    return {target: str(directory / name) for name, target in TARGETS.items()}


def add_addresses(directory: Path, hostname: str, addresses: list[str]) -> None:
    """Name the container's ``addresses`` in its hosts file (rewritten in place: it is mounted)."""
    with open(directory / "hosts", "a") as hosts:
        for address in addresses:
            hosts.write(f"{address}\t{hostname}\n")
