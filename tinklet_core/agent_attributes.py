"""Hardware facts a worker sends with its v2 ``GetAction`` (``ActionRequest.agent_attributes``).

Gathered once at start from ``/proc`` and ``/sys`` (DMI from ``/sys/class/dmi/id``), so a Tink
server can match workflows to hardware. The result is a plain mapping whose keys are the proto
field names of ``proto.AgentAttributes``, so a transport turns it into its message with
``google.protobuf.json_format.ParseDict`` and ``tinklet agent-attributes`` prints it as JSON.

Rules: what cannot be read is left out, never guessed (firmware placeholders such as "To Be
Filled By O.E.M." count as unreadable); gathering never raises; it reads only small files.
Every reader takes the filesystem root so tests can point it at a prepared tree.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("tinklet.agent_attributes")

#: What firmware writes into DMI fields nobody filled in.
_PLACEHOLDERS = {
    "",
    "none",
    "unknown",
    "not specified",
    "not applicable",
    "default string",
    "to be filled by o.e.m.",
    "system serial number",
    "system product name",
    "system manufacturer",
    "0123456789",
}
_DISPLAY_CLASS = "0x03"  # PCI base class 03: display controllers
#: DMI parts of AgentAttributes: proto field name → file in /sys/class/dmi/id.
_DMI_FIELDS: dict[str, dict[str, str]] = {
    "chassis": {"serial": "chassis_serial", "vendor": "chassis_vendor"},
    "bios": {"vendor": "bios_vendor", "version": "bios_version", "release_date": "bios_date"},
    "baseboard": {
        "vendor": "board_vendor",
        "product": "board_name",
        "version": "board_version",
        "serial_number": "board_serial",
    },
    "product": {"name": "product_name", "vendor": "sys_vendor", "serial_number": "product_serial"},
}
_CONTROLLERS = (("nvme", "NVMe"), ("sd", "SCSI"), ("vd", "virtio"), ("mmcblk", "MMC"), ("hd", "IDE"))
_VIRTUAL_BLOCK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "nbd", "sr")


def human_bytes(count: int) -> str:
    """``count`` bytes as a short human string in binary units: ``"512MiB"``, ``"15.6GiB"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def gather(root: Path = Path("/")) -> dict[str, Any]:
    """Every hardware fact that can be read under ``root``, keyed by proto field name.

    A part that cannot be read (or whose reader fails for any reason) is left out; this never
    raises, so it can never stop the worker.
    """
    readers: dict[str, Callable[[Path], Any]] = {
        "cpu": read_cpu,
        "memory": read_memory,
        "block": read_block_devices,
        "network": read_network_interfaces,
        "pci": read_pci_devices,
        "gpu": read_gpus,
    }
    for part, files in _DMI_FIELDS.items():
        readers[part] = functools.partial(_dmi, fields=files)
    facts: dict[str, Any] = {}
    for field, reader in readers.items():
        try:
            value = reader(root)
        except Exception as exc:  # a kernel without the file, a permission, a parse surprise
            log.debug("agent attributes: %s left out: %s", field, exc)
            continue
        if value:
            facts[field] = value
    return facts


def _read(path: Path) -> str:
    """A small sysfs/procfs file's text, stripped; empty when it cannot be read."""
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _known(text: str) -> str:
    """``text`` unless it is empty or a firmware placeholder."""
    return "" if text.strip().lower() in _PLACEHOLDERS else text.strip()


def _without_empty(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in ("", None, [], 0)}


def _cpuinfo_blocks(text: str) -> Iterator[dict[str, str]]:
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "processor" in fields:
            yield fields


def read_cpu(root: Path) -> dict[str, Any]:
    """Cores, threads and one entry per physical processor (socket) from ``/proc/cpuinfo``."""
    blocks = list(_cpuinfo_blocks(_read(root / "proc/cpuinfo")))
    if not blocks:
        return {}
    sockets: dict[str, list[dict[str, str]]] = {}
    for block in blocks:
        sockets.setdefault(block.get("physical id", "0"), []).append(block)
    processors = []
    for socket_id, threads in sorted(sockets.items(), key=lambda item: item[0]):
        first = threads[0]
        cores = first.get("cpu cores", "")
        processors.append(
            _without_empty(
                {
                    "id": int(socket_id) if socket_id.isdigit() else 0,
                    "cores": int(cores) if cores.isdigit() else 0,
                    "threads": len(threads),
                    "vendor": first.get("vendor_id", ""),
                    "model": first.get("model name", ""),
                    "capabilities": (first.get("flags") or first.get("Features") or "").split(),
                }
            )
        )
    total_cores = sum(p.get("cores", 0) for p in processors)
    return _without_empty(
        {"total_cores": total_cores, "total_threads": len(blocks), "processors": processors}
    )


def _meminfo_bytes(root: Path, key: str) -> int:
    for line in _read(root / "proc/meminfo").splitlines():
        name, _sep, rest = line.partition(":")
        if name == key:
            amount, *unit = rest.split()
            return int(amount) * (1024 if unit == ["kB"] else 1)
    return 0


def _online_memory_bytes(root: Path) -> int:
    """Installed memory the kernel sees, from the memory blocks in sysfs (0 when not exposed)."""
    base = root / "sys/devices/system/memory"
    block_size = _read(base / "block_size_bytes")
    if not block_size:
        return 0
    blocks = [entry for entry in base.glob("memory[0-9]*") if _read(entry / "online") == "1"]
    return len(blocks) * int(block_size, 16)


def read_memory(root: Path) -> dict[str, str]:
    """``usable`` is what the kernel manages (MemTotal); ``total`` the online memory blocks."""
    usable = _meminfo_bytes(root, "MemTotal")
    total = _online_memory_bytes(root)
    return _without_empty(
        {"total": human_bytes(total) if total else "", "usable": human_bytes(usable) if usable else ""}
    )


def _controller_type(name: str) -> str:
    for prefix, kind in _CONTROLLERS:
        if name.startswith(prefix):
            return kind
    return ""


def read_block_devices(root: Path) -> list[dict[str, str]]:
    """Disks (not loop, RAM, device-mapper or optical devices) from ``/sys/block``."""
    disks = []
    for entry in sorted((root / "sys/block").iterdir()):
        name = entry.name
        if name.startswith(_VIRTUAL_BLOCK_PREFIXES) or not (entry / "device").exists():
            continue
        sectors = _read(entry / "size")
        rotational = _read(entry / "queue/rotational")
        device = entry / "device"
        disks.append(
            _without_empty(
                {
                    "name": name,
                    "controller_type": _controller_type(name),
                    "drive_type": {"1": "HDD", "0": "SSD"}.get(rotational, ""),
                    "size": human_bytes(int(sectors) * 512) if sectors.isdigit() else "",
                    "physical_block_size": _read(entry / "queue/physical_block_size"),
                    "vendor": _known(_read(device / "vendor")),
                    "model": _known(_read(device / "model")),
                    "wwn": _known(_read(device / "wwid") or _read(entry / "wwid")),
                    "serial_number": _known(_read(device / "serial") or _read(entry / "serial")),
                }
            )
        )
    return disks


def read_network_interfaces(root: Path) -> list[dict[str, str]]:
    """Interfaces backed by a device (not loopback, bridges, veths or tunnels)."""
    interfaces = []
    for entry in sorted((root / "sys/class/net").iterdir()):
        if not (entry / "device").exists():
            continue
        speed = _read(entry / "speed")  # Mb/s; -1 or unreadable while the link is down
        interfaces.append(
            _without_empty(
                {
                    "name": entry.name,
                    "mac": _read(entry / "address"),
                    "speed": f"{speed}Mb/s" if speed.isdigit() and int(speed) > 0 else "",
                }
            )
        )
    return interfaces


def _pci_devices(root: Path) -> Iterator[dict[str, str]]:
    for entry in sorted((root / "sys/bus/pci/devices").iterdir()):
        driver = entry / "driver"
        yield _without_empty(
            {
                "vendor": _read(entry / "vendor"),
                "product": _read(entry / "device"),
                "class": _read(entry / "class"),
                "driver": driver.resolve().name if driver.exists() else "",
            }
        )


def read_pci_devices(root: Path) -> list[dict[str, str]]:
    """Every PCI device as vendor, product and class ids (hex, as sysfs gives them) and driver."""
    return list(_pci_devices(root))


def read_gpus(root: Path) -> list[dict[str, str]]:
    """The PCI display controllers."""
    return [device for device in _pci_devices(root) if device.get("class", "").startswith(_DISPLAY_CLASS)]


def _dmi(root: Path, fields: dict[str, str]) -> dict[str, str]:
    """The DMI fields named by ``fields`` (proto name → file in ``/sys/class/dmi/id``)."""
    base = root / "sys/class/dmi/id"
    return _without_empty({name: _known(_read(base / file)) for name, file in fields.items()})
