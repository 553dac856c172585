"""A network of its own for an action that does not ask for the host's: CNI, as the tink agent
and nerdctl do it, by running the host's CNI plugin binaries (no library).

The network is the first ``*.conflist``/``*.conf`` in the configuration directory (default
``/etc/cni/net.d``), else a bridge like the agent's fallback (:data:`DEFAULT_NETWORK`: bridge
``tinklet0``, ``10.4.0.0/16`` from ``host-local``, NAT to the outside). Plugins are looked up
in the binary directories (default ``/opt/cni/bin``, then Debian's ``/usr/lib/cni``).

:meth:`Cni.add` runs each plugin of the list with ``CNI_COMMAND=ADD`` against the network
namespace of the task's first process (``/proc/PID/ns/net``, before the process is started),
passing each one's result to the next (``prevResult``); the final result is kept in the
container's state directory, so :meth:`Cni.delete` can run ``DEL`` (in reverse order) even
for a container a crashed worker left. Plugins write their errors as JSON (``code``, ``msg``,
``details``): they become one-line failures.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinklet_core.containers.engine import EngineFailure
from tinklet_core.runtime_helpers import one_line

DEFAULT_BIN_DIRS = ("/opt/cni/bin", "/usr/lib/cni")
DEFAULT_CONF_DIR = "/etc/cni/net.d"
INTERFACE = "eth0"
RESULT_FILE = "cni-result.json"
#: Seconds a plugin may take.
PLUGIN_TIMEOUT = 30.0

DEFAULT_NETWORK: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "name": "tinklet",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "tinklet0",
            "isGateway": True,
            "ipMasq": True,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.4.0.0/16"}]],
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        }
    ],
}


class CniFailure(EngineFailure):
    """A CNI plugin failed, or the network cannot be set up here."""


@dataclass(frozen=True)
class Cni:
    """The network configuration and plugin directories of this host."""

    bin_dirs: tuple[str, ...] = DEFAULT_BIN_DIRS
    conf_dir: str = DEFAULT_CONF_DIR

    def network(self) -> dict[str, Any]:
        """The network list to use: the configuration directory's first, else the default."""
        directory = Path(self.conf_dir)
        found = sorted(
            path for pattern in ("*.conflist", "*.conf", "*.json") for path in directory.glob(pattern)
        ) if directory.is_dir() else []  # fmt: skip
        for path in found:
            try:
                document: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CniFailure(f"cannot read CNI configuration {path}: {one_line(exc)}") from None
            if "plugins" not in document:  # a single-plugin .conf
                version, name = document.get("cniVersion", "0.4.0"), document.get("name", "")
                document = {"cniVersion": version, "name": name, "plugins": [document]}
            return document
        return DEFAULT_NETWORK

    def missing(self) -> str | None:
        """Why no network can be set up here (plugins that are not installed), or ``None``."""
        network = self.network()
        wanted = [plugin["type"] for plugin in network["plugins"]]
        wanted += [
            plugin["ipam"]["type"] for plugin in network["plugins"] if plugin.get("ipam", {}).get("type")
        ]
        absent = [name for name in dict.fromkeys(wanted) if self._binary(name) is None]
        if not absent:
            return None
        return (
            f"the CNI plugins {', '.join(absent)} of network {network.get('name', '?')!r} are not in "
            f"{', '.join(self.bin_dirs)} (install containernetworking-plugins, or give the action the "
            "host's network)"
        )

    def _binary(self, name: str) -> str | None:
        for directory in self.bin_dirs:
            path = os.path.join(directory, name)
            if os.access(path, os.X_OK):
                return path
        return None

    def _run(self, command: str, container: str, netns: str, plugin: dict[str, Any], network: dict[str, Any],
             previous: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
        binary = self._binary(plugin["type"])
        if binary is None:
            raise CniFailure(f"CNI plugin {plugin['type']} is not in {', '.join(self.bin_dirs)}")
        config = {**plugin, "cniVersion": network.get("cniVersion", "1.0.0"), "name": network.get("name", "")}
        if previous is not None:
            config["prevResult"] = previous
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": netns,
            "CNI_IFNAME": INTERFACE,
            "CNI_PATH": os.pathsep.join(self.bin_dirs),
        }
        try:
            done = subprocess.run(
                [binary],
                input=json.dumps(config).encode(),
                env=env,
                capture_output=True,
                timeout=PLUGIN_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CniFailure(f"CNI plugin {plugin['type']} {command} failed: {one_line(exc)}") from None
        if done.returncode != 0:
            raise CniFailure(
                f"CNI plugin {plugin['type']} {command} failed: {plugin_error(done.stdout, done.stderr)}"
            )
        if command != "ADD" or not done.stdout.strip():
            return previous or {}
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def add(self, container: str, pid: int, state_dir: Path) -> dict[str, Any]:
        """Connect the network namespace of process ``pid`` (the task's); the CNI result."""
        network = self.network()
        netns = f"/proc/{pid}/ns/net"
        result: dict[str, Any] | None = None
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / RESULT_FILE).write_text(json.dumps({"network": network, "result": None}))
        for plugin in network["plugins"]:
            result = self._run("ADD", container, netns, plugin, network, result)
        (state_dir / RESULT_FILE).write_text(json.dumps({"network": network, "result": result}))
        return result or {}

    def delete(self, container: str, state_dir: Path) -> None:
        """Undo :meth:`add` for ``container`` (nothing when it was never connected)."""
        try:
            saved = json.loads((state_dir / RESULT_FILE).read_text())
        except (OSError, ValueError):
            return
        network, result = saved["network"], saved.get("result")
        for plugin in reversed(network["plugins"]):
            self._run("DEL", container, "", plugin, network, result)
        (state_dir / RESULT_FILE).unlink(missing_ok=True)


def plugin_error(stdout: bytes, stderr: bytes) -> str:
    """A plugin's error (its JSON ``msg`` and ``details``, else its output) on one line."""
    try:
        error = json.loads(stdout)
        words = ": ".join(str(part) for part in (error.get("msg"), error.get("details")) if part)
    except (ValueError, AttributeError):
        words = ""
    return (
        one_line(words or stderr.decode(errors="replace") or stdout.decode(errors="replace"))
        or "no reason given"
    )


def addresses(result: dict[str, Any]) -> list[str]:
    """The IP addresses (without prefix length) a CNI result gives the container."""
    return [str(ip["address"]).split("/", 1)[0] for ip in result.get("ips") or () if ip.get("address")]


def split_path(value: str | Sequence[str]) -> tuple[str, ...]:
    """``/a:/b`` (or a list) as directories."""
    parts = value.split(os.pathsep) if isinstance(value, str) else list(value)
    return tuple(part for part in parts if part)
