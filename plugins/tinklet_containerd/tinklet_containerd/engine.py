"""The containerd engine adapter: the container layer's engine calls, made with containerd's
gRPC API (:mod:`tinklet_containerd.client`).

One action's container is a containerd *container* record (the OCI spec from
:mod:`tinklet_containerd.ocispec`, a snapshot of the image, nerdctl's labels and tinklet's)
and a *task*, its running process, whose stdio are FIFOs this process reads
(:mod:`tinklet_containerd.fifo_output`). The container's id is the layer's container name.
Removing it deletes the task, the record, its snapshot, its FIFOs and its nerdctl log
directory. Every failure is one :class:`~tinklet_core.containers.engine.EngineFailure` line.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import any_pb2, empty_pb2

from tinklet_containerd.api.services.containers.v1 import containers_pb2
from tinklet_containerd.api.services.snapshots.v1 import snapshots_pb2
from tinklet_containerd.api.services.tasks.v1 import tasks_pb2
from tinklet_containerd.api.types.task import task_pb2
from tinklet_containerd.client import CALL_TIMEOUT, Containerd, status_code
from tinklet_containerd.cni import Cni, CniFailure, addresses
from tinklet_containerd.dnsfiles import add_addresses, write_dns_files
from tinklet_containerd.fifo_output import FifoOutput, FifoPair
from tinklet_containerd.images import DEFAULT_SNAPSHOTTER, ImageStore
from tinklet_containerd.jsonlog import (
    DEFAULT_DATA_ROOT,
    JsonLogWriter,
    StoredLog,
    container_dir,
    data_store,
    log_file,
    write_log_config,
)
from tinklet_containerd.ocispec import create_missing_sources, hostname, oci_spec
from tinklet_containerd.pull import Puller
from tinklet_core.containers.engine import (
    ACTION_LABEL,
    AGENT_LABEL,
    ContainerGone,
    EngineFailure,
    PullEvents,
)
from tinklet_core.containers.spec import ContainerSpec
from tinklet_core.engine_wait import unreachable
from tinklet_core.model import RegistryCredentials

RUNC_RUNTIME = "io.containerd.runc.v2"
SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#: How long a removal waits for a killed task to stop before deleting it.
KILL_WAIT_SECONDS = 10.0

log = logging.getLogger("tinklet.containerd")

#: Codes of a kill that found the task already stopped or gone.
_ALREADY_STOPPED = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)


def label_filter(agent_id: str | None) -> str:
    """containerd's filter for tinklet's containers (one filter: its terms are ANDed)."""
    action = f'labels."{ACTION_LABEL}"'
    return action if agent_id is None else f'{action},labels."{AGENT_LABEL}"=={json.dumps(agent_id)}'


class ContainerdEngine:
    """One containerd, reached at ``address``, working in ``namespace``; constructing it
    checks that containerd answers (:class:`~tinklet_core.errors.EngineNotReady` when nothing
    answers yet, :class:`~tinklet_core.errors.RuntimeUnavailable` when the socket path can never be one)."""

    def __init__(
        self,
        address: str,
        namespace: str,
        snapshotter: str = DEFAULT_SNAPSHOTTER,
        data_root: str = DEFAULT_DATA_ROOT,
        puller: Puller | None = None,
        cni: Cni | None = None,
        networking: bool = True,
    ) -> None:
        self.client = Containerd(address, namespace)
        self.cni = cni or Cni()
        #: False: an action without the host's network gets loopback only, no CNI network.
        self.networking = networking
        #: Containers to connect to the CNI network once their task exists: their host names.
        self._networked: dict[str, str] = {}
        self.store = ImageStore(self.client, snapshotter)
        self.puller = puller or Puller(self.store)
        self.data_store = data_store(data_root, self.client.socket)
        self._fifos: dict[str, FifoPair] = {}
        try:
            self.ping()
        except EngineFailure as exc:
            self.client.close()
            message = str(exc).removeprefix("ping failed: ")
            raise unreachable(message, f"unix://{self.client.socket}") from None

    @property
    def namespace(self) -> str:
        """The containerd namespace tinklet's images and containers live in."""
        return self.client.namespace

    def ping(self) -> None:
        """Return when containerd answers (:class:`EngineUnreachable` when it does not)."""
        with self.client.failing_as("ping failed"):
            self.client.version.Version(empty_pb2.Empty(), timeout=5)

    # -- images ----------------------------------------------------------------------------

    def image_present(self, image: str) -> bool:
        """True when the namespace has an image record ``image``."""
        return self.store.image_target(image) is not None

    def image_user(self, image: str) -> str:
        """The ``USER`` of ``image``'s config (``""``: root)."""
        return self.store.config(image)[1].user

    def pull(
        self, image: str, credentials: RegistryCredentials | None, on_event: PullEvents | None = None
    ) -> None:
        """Pull and unpack ``image`` (see :mod:`tinklet_containerd.pull`)."""
        self.puller.pull(image, credentials, on_event)

    # -- containers ------------------------------------------------------------------------

    def _state_dir(self, container: str) -> Path:
        return container_dir(self.data_store, self.namespace, container)

    def create(self, spec: ContainerSpec) -> str:
        """Create the container record and its snapshot (unpacking the image if it was not);
        the id is ``spec.name``."""
        manifest, config = self.store.config(spec.image)
        host_network = spec.network_mode == "host"
        networked = not host_network and self.networking
        if networked and (missing := self.cni.missing()):
            raise EngineFailure(
                f"container create failed: the action needs a network of its own, but {missing}"
            )
        create_missing_sources(spec)
        state_dir = self._state_dir(spec.name)
        try:
            files = write_dns_files(state_dir / "etc", hostname(spec), host_network)
            document = oci_spec(spec, config, self.namespace, files)
        except OSError as exc:
            shutil.rmtree(state_dir, ignore_errors=True)
            raise EngineFailure(
                f"container create failed: cannot write its /etc files: {exc.strerror}"
            ) from None
        except EngineFailure:
            shutil.rmtree(state_dir, ignore_errors=True)
            raise
        container = containers_pb2.Container(
            id=spec.name,
            labels={**dict(spec.labels), **self._nerdctl_labels(spec.name, document["hostname"])},
            image=spec.image,
            runtime=containers_pb2.Container.Runtime(name=RUNC_RUNTIME),
            spec=any_pb2.Any(type_url=SPEC_TYPE_URL, value=json.dumps(document).encode()),
            snapshotter=self.store.snapshotter,
            snapshot_key=spec.name,
        )
        try:
            self._create_record(container, manifest)
        except EngineFailure:
            shutil.rmtree(state_dir, ignore_errors=True)
            raise
        if networked:
            self._networked[spec.name] = document["hostname"]
        try:
            write_log_config(state_dir, self.client.socket)
        except OSError as exc:
            log.warning("could not write the nerdctl log config of %s: %s", spec.name, exc)
        return spec.name

    def _nerdctl_labels(self, container: str, hostname: str) -> dict[str, str]:
        """The labels nerdctl reads (``ps``, ``logs``, ``inspect``, ``rm``)."""
        state_dir = self._state_dir(container)
        return {
            "nerdctl/namespace": self.namespace,
            "nerdctl/name": container,
            "nerdctl/extraHosts": "[]",
            "nerdctl/hostname": hostname,
            "nerdctl/log-uri": f"json-file://{log_file(state_dir, container)}",
            "nerdctl/state-dir": str(state_dir),
        }

    def _create_record(self, container: containers_pb2.Container, manifest: dict[str, Any]) -> None:
        """Under one lease: unpack the image if needed, prepare the container's snapshot on
        it, create the record (which then keeps the snapshot); the snapshot goes on failure."""
        with self.client.lease("create") as lease:
            top = self.store.unpack(lease, manifest)
            with self.client.failing_as("container create failed"):
                self.client.snapshots.Prepare(
                    snapshots_pb2.PrepareSnapshotRequest(
                        snapshotter=self.store.snapshotter, key=container.id, parent=top
                    ),
                    metadata=self.client.metadata(lease),
                    timeout=CALL_TIMEOUT,
                )
            try:
                with self.client.failing_as("container create failed"):
                    self.client.containers.Create(
                        containers_pb2.CreateContainerRequest(container=container),
                        metadata=self.client.metadata(lease),
                        timeout=CALL_TIMEOUT,
                    )
            except EngineFailure:
                self.store.remove_snapshot(container.id)
                raise

    def attach(self, container: str) -> FifoOutput:
        """Make the task with FIFO stdio whose read ends are already open (nothing is missed);
        its process waits for :meth:`start`."""
        try:
            fifos = FifoPair(container)
        except OSError as exc:
            raise EngineFailure(f"container attach failed: cannot make its FIFOs: {exc.strerror}") from None
        self._fifos[container] = fifos
        with self.client.failing_as("container attach failed"):
            mounts = self.client.snapshots.Mounts(
                snapshots_pb2.MountsRequest(snapshotter=self.store.snapshotter, key=container),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            ).mounts
            created = self.client.tasks.Create(
                tasks_pb2.CreateTaskRequest(
                    container_id=container,
                    rootfs=mounts,
                    stdout=str(fifos.paths[1]),
                    stderr=str(fifos.paths[2]),
                ),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            )
        if container in self._networked:
            self._connect(container, int(created.pid))
        try:
            json_log = JsonLogWriter(log_file(self._state_dir(container), container))
        except OSError as exc:
            log.warning("could not open the json log of %s: %s", container, exc)
            json_log = None
        return FifoOutput(fifos, json_log)

    def _connect(self, container: str, pid: int) -> None:
        """Give the created task's network namespace its CNI network and name its address."""
        state_dir = self._state_dir(container)
        try:
            result = self.cni.add(container, pid, state_dir)
            add_addresses(state_dir / "etc", self._networked[container], addresses(result))
        except CniFailure as exc:
            raise EngineFailure(f"container network setup failed: {exc}") from None
        except OSError as exc:
            raise EngineFailure(f"container network setup failed: {exc}") from None

    def start(self, container: str) -> None:
        """Start the task's process."""
        with self.client.failing_as("container failed to start"):
            self.client.tasks.Start(
                tasks_pb2.StartRequest(container_id=container),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            )

    def wait(self, container: str) -> int:
        """Block until the task exits; its exit status."""
        with self.client.failing_as("waiting for the container failed", gone=True):
            done = self.client.tasks.Wait(
                tasks_pb2.WaitRequest(container_id=container), metadata=self.client.metadata()
            )
        return int(done.exit_status)

    def exit_code(self, container: str) -> int | None:
        """The exit status once the task stopped, ``None`` while it runs; :class:`ContainerGone`
        when containerd knows no task of the container."""
        with self.client.failing_as("task lookup failed", gone=True):
            process = self.client.tasks.Get(
                tasks_pb2.GetRequest(container_id=container),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            ).process
        return int(process.exit_status) if process.status == task_pb2.STOPPED else None

    def logs(self, container: str) -> StoredLog:
        """The output logged so far, from the container's json log."""
        return StoredLog(log_file(self._state_dir(container), container))

    def oom_killed(self, container: str) -> bool:
        """Not reported by containerd's task API: always False."""
        return False

    def kill(self, container: str) -> None:
        """SIGKILL every process of the task; one already stopped or gone is fine."""
        with self.client.failing_as("container kill failed", tolerate=_ALREADY_STOPPED):
            self.client.tasks.Kill(
                tasks_pb2.KillRequest(container_id=container, signal=int(signal.SIGKILL), all=True),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            )

    def _delete_task(self, container: str) -> None:
        """Delete the task, killing it first if it still runs; one that is gone is fine."""
        request = tasks_pb2.DeleteTaskRequest(container_id=container)
        metadata = self.client.metadata()
        with self.client.failing_as("task delete failed", tolerate=(grpc.StatusCode.NOT_FOUND,)):
            try:
                self.client.tasks.Delete(request, metadata=metadata, timeout=CALL_TIMEOUT)
                return
            except grpc.RpcError as exc:
                if status_code(exc) is not grpc.StatusCode.FAILED_PRECONDITION:  # not "still running"
                    raise
        self.kill(container)
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                if self.exit_code(container) is not None:
                    break
            except ContainerGone:
                return
            time.sleep(0.05)
        with self.client.failing_as("task delete failed", tolerate=(grpc.StatusCode.NOT_FOUND,)):
            self.client.tasks.Delete(request, metadata=metadata, timeout=CALL_TIMEOUT)

    def remove(self, container: str) -> None:
        """Remove the task (killed if running), the container record, its snapshot, FIFOs
        and log directory; what is already gone is fine."""
        self._delete_task(container)
        with self.client.failing_as("container remove failed", tolerate=(grpc.StatusCode.NOT_FOUND,)):
            self.client.containers.Delete(
                containers_pb2.DeleteContainerRequest(id=container),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            )
        self.store.remove_snapshot(container)
        try:
            self.cni.delete(container, self._state_dir(container))
        except CniFailure as exc:
            log.warning("could not remove the network of container %s: %s", container, exc)
        self._networked.pop(container, None)
        fifos = self._fifos.pop(container, None)
        if fifos is not None:
            fifos.remove()
        shutil.rmtree(self._state_dir(container), ignore_errors=True)

    def containers(self, agent_id: str | None = None) -> list[str]:
        """Ids of tinklet's containers in the namespace (only ``agent_id``'s if given)."""
        with self.client.failing_as("container list failed"):
            found = self.client.containers.List(
                containers_pb2.ListContainersRequest(filters=[label_filter(agent_id)]),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            ).containers
        return sorted(container.id for container in found)

    def close(self) -> None:
        """Close the connection and any FIFOs still open."""
        for fifos in self._fifos.values():
            fifos.close()
        self.client.close()
