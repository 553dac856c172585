"""A private containerd for the tests, and the busybox test image as an OCI archive.

:class:`PrivateContainerd` runs the machine's own ``containerd`` binary with a config of its
own: root, state, gRPC/ttrpc/debug sockets and the ``opt`` directory all under one temporary
directory, the CRI plugin disabled. The host's ``/run/containerd/containerd.sock`` is never
used. (containerd 1.6 puts its shims' sockets under ``/run/containerd/s/``, named by a hash of
the private socket's path: those never clash with another containerd's.)

:func:`busybox_archive` writes the image ``scripts/setup`` imports into Docker and Podman (the
host's static busybox and its applets, ``PATH=/bin``) as an OCI image layout tar, which
:func:`tinklet_containerd.images.import_oci_archive` loads through the API: the offline path.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tinklet_containerd.client import Containerd
from tinklet_containerd.images import ImageStore, host_architecture, import_oci_archive

APPLETS = [
    "sh",
    "ash",
    "echo",
    "sleep",
    "cat",
    "ls",
    "env",
    "true",
    "false",
    "printf",
    "head",
    "tail",
    "seq",
    "yes",
    "wc",
    "grep",
    "sed",
    "id",
    "mount",
    "dd",
    "kill",
    "wget",
]
TEST_IMAGE = "docker.io/tinklet/busybox:latest"
START_TIMEOUT = 20.0


class PrivateContainerd:
    """``containerd --config X`` with everything under ``root``; :meth:`start`, :meth:`stop`."""

    def __init__(self, root: Path | None = None, command_prefix: tuple[str, ...] = ()) -> None:
        """``command_prefix`` runs containerd through a command (``setpriv --bounding-set -…``)."""
        self.root = root or Path(tempfile.mkdtemp(prefix="tinklet-containerd-"))
        self.command_prefix = command_prefix
        self.socket = str(self.root / "containerd.sock")
        self.config = self.root / "config.toml"
        self.log_path = self.root / "containerd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.config.write_text(
            "\n".join(
                [
                    "version = 2",
                    f'root = "{self.root}/root"',
                    f'state = "{self.root}/state"',
                    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",'
                    ' "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",'
                    ' "io.containerd.snapshotter.v1.devmapper"]',
                    "[grpc]",
                    f'  address = "{self.socket}"',
                    "[ttrpc]",
                    f'  address = "{self.socket}.ttrpc"',
                    "[debug]",
                    f'  address = "{self.root}/debug.sock"',
                    '[plugins."io.containerd.internal.v1.opt"]',
                    f'  path = "{self.root}/opt"',
                    "",
                ]
            )
        )

    def start(self) -> None:
        """Start containerd and wait until ``ctr version`` answers on the private socket."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*self.command_prefix, "containerd", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"private containerd did not start:\n{self.log_path.read_text()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop containerd (its shims, and the tasks they keep, live on)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def ctr(
        self, *args: str, check: bool = True, namespace: str = "tinkerbell"
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ctr`` against this containerd (for checks from outside the runtime)."""
        return subprocess.run(
            ["ctr", "--address", self.socket, "--namespace", namespace, *args],
            capture_output=True, text=True, check=check, timeout=60,
        )  # fmt: skip

    def destroy(self) -> None:
        """Kill every task left, stop containerd, and remove its directory."""
        for namespace in self.ctr("namespaces", "ls", "-q", check=False).stdout.split():
            for line in self.ctr("tasks", "ls", check=False, namespace=namespace).stdout.splitlines()[1:]:
                task = line.split()[0]
                self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", task, check=False, namespace=namespace)
                time.sleep(0.2)
                self.ctr("tasks", "delete", "-f", task, check=False, namespace=namespace)
        self.stop()
        subprocess.run(["umount", "-R", f"{self.root}/state"], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def containerd_with_test_image(command_prefix: tuple[str, ...] = ()) -> Iterator[PrivateContainerd]:
    """A started private containerd holding the test image (imported from an OCI archive through
    the API) in namespace ``tinkerbell``; destroyed afterwards. ``command_prefix``: see
    :class:`PrivateContainerd`."""
    daemon = PrivateContainerd(command_prefix=command_prefix)
    try:
        daemon.start()
        client = Containerd(daemon.socket, "tinkerbell")
        try:
            import_oci_archive(ImageStore(client), busybox_archive(daemon.root / "busybox.tar"), TEST_IMAGE)
        finally:
            client.close()
        yield daemon
    finally:
        daemon.destroy()


def containerd_missing() -> str | None:
    """Why no private containerd can run here, or ``None``."""
    missing = [
        tool for tool in ("containerd", "ctr", "runc", "containerd-shim-runc-v2") if not shutil.which(tool)
    ]
    return f"{', '.join(missing)} not installed (scripts/setup installs containerd)" if missing else None


def options(daemon: PrivateContainerd, **more: object) -> dict[str, object]:
    """The runtime options that point tinklet at ``daemon``, with its own certs.d and CNI
    configuration directories. Actions that do not ask for the host's network get loopback only
    (``containerd_network=none``): a CNI network would change the host's network, which only
    ``test_containerd_network`` does, in a network namespace of its own."""
    return {
        "containerd_socket": daemon.socket,
        "containerd_data_root": str(daemon.root / "nerdctl"),
        "containerd_certs_dir": str(daemon.root / "certs.d"),
        "containerd_cni_conf_dir": str(daemon.root / "cni.d"),
        "containerd_network": "none",
        **more,
    }


def _tar_entry(tar: tarfile.TarFile, name: str, **fields: object) -> None:
    info = tarfile.TarInfo(name)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info)


def busybox_layer() -> bytes:
    """The test image's one layer: ``bin/busybox``, its applets, ``tmp`` and ``etc``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("bin", "tmp", "etc"):
            _tar_entry(tar, directory, type=tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
        busybox = shutil.which("busybox") or "/bin/busybox"
        with open(busybox, "rb") as binary:
            info = tarfile.TarInfo("bin/busybox")
            info.size = os.fstat(binary.fileno()).st_size
            info.mode = 0o755
            tar.addfile(info, binary)
        for applet in APPLETS:
            _tar_entry(tar, f"bin/{applet}", type=tarfile.SYMTYPE, linkname="busybox", mode=0o777)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def busybox_archive(path: Path, **config_fields: object) -> Path:
    """Write the busybox test image as an OCI image layout tar at ``path``; ``config_fields``
    are added to its run configuration (``Entrypoint``, ``Cmd``…), beside ``Env: [PATH=/bin]``."""
    layer = busybox_layer()
    config = json.dumps(
        {
            "architecture": host_architecture(),
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], **config_fields},
            "rootfs": {"type": "layers", "diff_ids": [_sha256(layer)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha256(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _sha256(layer),
                        "size": len(layer)}],
        }
    ).encode()  # fmt: skip
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": _sha256(manifest), "size": len(manifest)}],
        }
    ).encode()  # fmt: skip
    with tarfile.open(path, "w") as tar:
        for name, data in (
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", index),
            *((f"blobs/sha256/{_sha256(blob)[7:]}", blob) for blob in (layer, config, manifest)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
