"""Hardware facts: checked against this machine through other sources, and against a prepared tree."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

from tinklet_core.agent_attributes import gather, human_bytes

_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _parse_human(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)([KMGT]?i?B)", text)
    assert match, text
    return float(match.group(1)) * _UNITS[match.group(2)]


def _hardware_address(name: str) -> str:
    """The MAC of interface ``name`` from the kernel's ioctl, not from sysfs."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        raw = fcntl.ioctl(sock.fileno(), 0x8927, struct.pack("256s", name.encode()[:15]))  # SIOCGIFHWADDR
    return ":".join(f"{byte:02x}" for byte in raw[18:24])


def test_cpu_threads_match_the_cpus_the_kernel_reports() -> None:
    facts = gather()
    assert facts["cpu"]["total_threads"] == os.cpu_count()
    assert sum(p["threads"] for p in facts["cpu"]["processors"]) == os.cpu_count()
    assert facts["cpu"]["total_cores"] >= 1


def test_usable_memory_matches_meminfo() -> None:
    lines = Path("/proc/meminfo").read_text().splitlines()
    mem_total_kib = next(int(line.split()[1]) for line in lines if line.startswith("MemTotal:"))
    usable = _parse_human(gather()["memory"]["usable"])
    assert abs(usable - mem_total_kib * 1024) <= 0.05 * 2**30 + 0.001 * mem_total_kib * 1024


def test_network_interfaces_are_real_devices_with_their_kernel_macs() -> None:
    names = {name for _index, name in socket.if_nameindex()}
    reported = {entry["name"]: entry for entry in gather().get("network", [])}
    with_device = {name for name in names if Path(f"/sys/class/net/{name}/device").exists()}
    assert set(reported) == with_device
    assert "lo" not in reported
    for name, entry in reported.items():
        assert entry["mac"] == _hardware_address(name)


def test_human_bytes_is_short_and_exact_enough() -> None:
    assert human_bytes(512) == "512B"
    assert human_bytes(2**30) == "1GiB"
    assert human_bytes(int(15.6 * 2**30)) == "15.6GiB"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_a_prepared_tree_gives_exactly_what_is_there(tmp_path: Path) -> None:
    _write(
        tmp_path / "proc/cpuinfo",
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nphysical id\t: 0\n"
        "cpu cores\t: 1\nflags\t\t: fpu sse\n\nprocessor\t: 1\nphysical id\t: 1\ncpu cores\t: 1\n",
    )
    _write(tmp_path / "proc/meminfo", "MemTotal:        1048576 kB\nMemFree: 1 kB")
    dmi = tmp_path / "sys/class/dmi/id"
    _write(dmi / "bios_vendor", "Acme BIOS")
    _write(dmi / "bios_version", "1.2.3")
    _write(dmi / "board_serial", "To Be Filled By O.E.M.")
    _write(dmi / "product_name", "Rack 9000")
    _write(dmi / "chassis_serial", "")
    disk = tmp_path / "sys/block/nvme0n1"
    _write(disk / "size", "2048")
    _write(disk / "queue/rotational", "0")
    _write(disk / "device/model", "Fast Disk")
    _write(disk / "device/serial", "S123")
    _write(tmp_path / "sys/block/loop0/size", "8")
    facts = gather(tmp_path)
    assert facts["cpu"]["total_threads"] == 2
    assert [p["threads"] for p in facts["cpu"]["processors"]] == [1, 1]
    assert facts["cpu"]["processors"][0]["capabilities"] == ["fpu", "sse"]
    assert facts["memory"] == {"usable": "1GiB"}
    assert facts["bios"] == {"vendor": "Acme BIOS", "version": "1.2.3"}
    assert facts["product"] == {"name": "Rack 9000"}
    assert "baseboard" not in facts and "chassis" not in facts
    assert facts["block"] == [
        {
            "name": "nvme0n1",
            "controller_type": "NVMe",
            "drive_type": "SSD",
            "size": "1MiB",
            "model": "Fast Disk",
            "serial_number": "S123",
        }
    ]
    assert "network" not in facts and "pci" not in facts


def test_an_empty_root_gives_nothing_and_never_raises(tmp_path: Path) -> None:
    assert gather(tmp_path) == {}


# -- on the wire: what a worker process sends with GetAction ------------------------------------

_WORKFLOW = {
    "name": "wf",
    "tasks": [{"name": "t", "actions": [{"name": "a", "image": "none", "command": ["echo", "hi"]}]}],
}
_AGENT = "attributes-worker"


def _worker_requests(*extra: str) -> list[dict[str, object]]:
    """Run a worker process (the process runtime, v2) for one action; the attributes the test
    Tink server received with each GetAction."""
    from tinklet_core.model import State
    from tinklet_core.testing.tink_server import TinkServer
    from tinklet_core.workflow import parse_workflow

    with TinkServer([parse_workflow(_WORKFLOW, agent_id=_AGENT)], _AGENT) as server:
        command = [
            sys.executable, "-m", "tinklet_core", "-p", "tinklet_core.testing.process_runtime",
            "--runtime", "process", "--tink", server.address, "--identifier", _AGENT,
            "--protocol", "v2", "--max-backoff", "0.3", *extra,
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        done = server.wait_until(lambda: State.SUCCESS in server.states_of("t/a"), timeout=30)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
        assert done, output
        return server.agent_attributes


def test_get_action_carries_this_machines_facts() -> None:
    received = _worker_requests()
    assert received, "no GetAction reached the server"
    facts = received[0]
    assert all(entry == facts for entry in received)  # gathered once, sent with every request
    assert facts["cpu"]["total_threads"] == os.cpu_count()
    lines = Path("/proc/meminfo").read_text().splitlines()
    mem_total_kib = next(int(line.split()[1]) for line in lines if line.startswith("MemTotal:"))
    assert abs(_parse_human(facts["memory"]["usable"]) - mem_total_kib * 1024) <= 0.06 * 2**30
    with_device = sorted(
        name for _i, name in socket.if_nameindex() if Path(f"/sys/class/net/{name}/device").exists()
    )
    assert sorted(entry["name"] for entry in facts.get("network", [])) == with_device
    for entry in facts.get("network", []):
        assert entry["mac"] == _hardware_address(entry["name"])


def test_no_agent_attributes_sends_none() -> None:
    received = _worker_requests("--no-agent-attributes")
    assert received and all(entry == {} for entry in received)


def test_the_agent_attributes_command_prints_what_would_be_sent() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tinklet_core", "agent-attributes"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["cpu"]["total_threads"] == os.cpu_count()
