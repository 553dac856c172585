"""A dockerd of a test's own, which the test may kill and restart (never the shared one).

It has its own ``--data-root``, ``--exec-root``, ``--pidfile`` and socket, and runs inside a
network namespace of its own (``ip netns add`` + ``nsenter --net=…``, not ``ip netns exec``,
which remounts /sys and hides the cgroup mounts), with ``--bridge none`` so it leaves the
host's ``docker0`` alone. It starts its own containerd (under its exec root), which outlives a
``kill -9`` of dockerd as on a real host, and which a restarted dockerd finds again. The test
image is copied from the shared daemon with ``docker save`` (read-only there) and ``load``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_IMAGE = "tinklet/busybox:latest"
START_TIMEOUT = 30.0


def tools_missing() -> str | None:
    """Why a private dockerd cannot run here, or ``None``."""
    for tool in ("dockerd", "docker", "ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    return None


def _runtime_config(shared: Path = Path("/etc/docker/daemon.json")) -> dict[str, object]:
    """The shared daemon's OCI runtimes (the wrapper that lets privileged containers start here,
    see DESIGN.md), and nothing else of its configuration."""
    try:
        config = json.loads(shared.read_text())
    except (OSError, ValueError):
        return {}
    return {key: config[key] for key in ("runtimes", "default-runtime") if key in config}


class PrivateDockerd:
    """``start()`` it, ``kill()`` it (SIGKILL, as a crash), ``start()`` it again, ``close()`` it."""

    def __init__(
        self, root: Path, wrapper_runtime: bool = True, command_prefix: tuple[str, ...] = ()
    ) -> None:
        """``wrapper_runtime=False``: plain runc, without the shared daemon's wrapper runtime, so
        that on a host whose bounding set is short the daemon refuses privileged containers;
        ``command_prefix`` runs dockerd through a command (``setpriv --bounding-set -…``)."""
        self.root = root
        self.command_prefix = command_prefix
        self.netns = f"tinklet-fault-{uuid.uuid4().hex[:8]}"
        self.socket = root / "docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        (root / "daemon.json").write_text(json.dumps(_runtime_config() if wrapper_runtime else {}))
        subprocess.run(["ip", "netns", "add", self.netns], check=True)

    @property
    def url(self) -> str:
        """The daemon's URL, for ``--docker-host``."""
        return f"unix://{self.socket}"

    def docker(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this daemon."""
        return subprocess.run(
            ["docker", "-H", self.url, *args], capture_output=True, text=True, check=True, **kwargs
        )  # type: ignore[call-overload]

    def start(self) -> None:
        """Start dockerd and wait until it answers."""
        command = [
            *self.command_prefix, "nsenter", f"--net=/run/netns/{self.netns}", "dockerd",
            f"--data-root={self.root / 'data'}", f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}", f"--host={self.url}",
            f"--config-file={self.root / 'daemon.json'}",
            "--bridge=none", "--iptables=false", "--ip6tables=false",
        ]  # fmt: skip
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - the daemon writes it while it runs
        self.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"private dockerd exited: {self.log_tail()}")
            if (
                self.socket.exists()
                and subprocess.run(["docker", "-H", self.url, "version"], capture_output=True).returncode == 0
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"private dockerd did not answer in {START_TIMEOUT}s: {self.log_tail()}")

    def load_test_image(self) -> None:
        """Copy the shared daemon's test image into this one."""
        saved = subprocess.run(["docker", "save", SHARED_IMAGE], capture_output=True, check=True).stdout
        subprocess.run(["docker", "-H", self.url, "load"], input=saved, capture_output=True, check=True)

    def kill(self) -> None:
        """SIGKILL dockerd (its containerd and containers live on, as after a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def containers(self) -> list[str]:
        """Every container on this daemon (running or not)."""
        return self.docker("ps", "-aq").stdout.split()

    def log_tail(self, lines: int = 5) -> str:
        """The end of the daemon's log."""
        with contextlib.suppress(OSError):
            return " | ".join((self.root / "dockerd.log").read_text(errors="replace").splitlines()[-lines:])
        return "no log"

    def close(self) -> None:
        """Stop dockerd and its containerd, unmount what they left, drop the namespace."""
        if self.process is None:
            with contextlib.suppress(Exception):
                self.start()  # a killed daemon: start it so it can stop its containers cleanly
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(Exception):
                self.docker("rm", "-f", *self.containers()) if self.containers() else None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stop_containerd()
        subprocess.run(["ip", "netns", "delete", self.netns], check=False, capture_output=True)
        for mount in reversed(_mounts_under(self.root)):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _stop_containerd(self) -> None:
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def daemon_with_test_image(
    root: Path, wrapper_runtime: bool = True, command_prefix: tuple[str, ...] = ()
) -> Iterator[PrivateDockerd]:
    """A started private dockerd under ``root`` holding the test image; closed afterwards. The
    test is skipped where a private dockerd cannot run. ``wrapper_runtime``, ``command_prefix``:
    see :class:`PrivateDockerd`."""
    missing = tools_missing()
    if missing:
        pytest.skip(missing)
    daemon = PrivateDockerd(root, wrapper_runtime, command_prefix)
    try:
        daemon.start()
        daemon.load_test_image()
        yield daemon
    finally:
        daemon.close()


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    with open("/proc/self/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
