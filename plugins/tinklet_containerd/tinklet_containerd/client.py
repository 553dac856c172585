"""One connection to containerd's gRPC API: the service stubs, the namespace every call carries,
leases, and containerd's errors as the container layer's one-line failures.

Every call carries the ``containerd-namespace`` metadata header (containerd keeps images,
containers and snapshots per namespace); calls that make objects the garbage collector could
take before they are referenced (pulled blobs, unpacked layers, a prepared snapshot) carry a
``containerd-lease`` header too (:meth:`Containerd.lease`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc

from tinklet_containerd.api.services.containers.v1 import containers_pb2_grpc
from tinklet_containerd.api.services.content.v1 import content_pb2_grpc
from tinklet_containerd.api.services.diff.v1 import diff_pb2_grpc
from tinklet_containerd.api.services.images.v1 import images_pb2_grpc
from tinklet_containerd.api.services.leases.v1 import leases_pb2, leases_pb2_grpc
from tinklet_containerd.api.services.snapshots.v1 import snapshots_pb2_grpc
from tinklet_containerd.api.services.tasks.v1 import tasks_pb2_grpc
from tinklet_containerd.api.services.version.v1 import version_pb2_grpc
from tinklet_core.containers.engine import ContainerGone, EngineFailure, EngineUnreachable, engine_failure
from tinklet_core.runtime_helpers import one_line, without_secret

DEFAULT_SOCKET = "/run/containerd/containerd.sock"
DEFAULT_NAMESPACE = "tinkerbell"
NAMESPACE_HEADER = "containerd-namespace"
LEASE_HEADER = "containerd-lease"
#: Seconds a short call may take; waiting for a task and streaming content have no limit.
CALL_TIMEOUT = 60.0
#: A lease expires on its own after this long, should tinklet die before deleting it.
LEASE_LIFETIME = timedelta(hours=1)

T = TypeVar("T")

#: containerd's answers that mean "not reachable", not "refused".
UNREACHABLE = (grpc.StatusCode.UNAVAILABLE,)


def status_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    """The gRPC status of a failed call (``None`` when the error carries none)."""
    return exc.code() if isinstance(exc, grpc.Call) else None


def socket_path(address: str) -> str:
    """The socket path of ``address`` (a path or a ``unix://`` URL)."""
    return address.removeprefix("unix://")


class Containerd:
    """The stubs of one containerd, reached at ``address``, working in ``namespace``."""

    def __init__(self, address: str = DEFAULT_SOCKET, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.socket = socket_path(address)
        self.namespace = namespace
        self.channel = grpc.insecure_channel(
            f"unix://{self.socket}",
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024), ("grpc.enable_retries", 0)],
        )
        self.containers = containers_pb2_grpc.ContainersStub(self.channel)
        self.content = content_pb2_grpc.ContentStub(self.channel)
        self.diff = diff_pb2_grpc.DiffStub(self.channel)
        self.images = images_pb2_grpc.ImagesStub(self.channel)
        self.leases = leases_pb2_grpc.LeasesStub(self.channel)
        self.snapshots = snapshots_pb2_grpc.SnapshotsStub(self.channel)
        self.tasks = tasks_pb2_grpc.TasksStub(self.channel)
        self.version = version_pb2_grpc.VersionStub(self.channel)

    @property
    def service(self) -> str:
        """How failures name this daemon."""
        return f"containerd at {self.socket}"

    def metadata(self, lease: str | None = None) -> tuple[tuple[str, str], ...]:
        """The headers of a call in this namespace (and ``lease``)."""
        headers = ((NAMESPACE_HEADER, self.namespace),)
        return (*headers, (LEASE_HEADER, lease)) if lease else headers

    @contextmanager
    def lease(self, purpose: str) -> Iterator[str]:
        """A lease for the block (its id), deleted after it with what only it referenced.

        Everything made under the lease is kept from the garbage collector until it is
        referenced by an image or a container; the lease expires on its own should tinklet die.
        """
        expire = (datetime.now(UTC) + LEASE_LIFETIME).strftime("%Y-%m-%dT%H:%M:%SZ")
        lease_id = f"tinklet-{purpose}-{secrets.token_hex(4)}"
        with self.failing_as("lease create failed"):
            self.leases.Create(
                leases_pb2.CreateRequest(id=lease_id, labels={"containerd.io/gc.expire": expire}),
                metadata=self.metadata(),
                timeout=CALL_TIMEOUT,
            )
        try:
            yield lease_id
        finally:
            try:
                with self.failing_as("lease delete failed"):
                    self.leases.Delete(
                        leases_pb2.DeleteRequest(id=lease_id), metadata=self.metadata(), timeout=CALL_TIMEOUT
                    )
            except EngineFailure:
                pass  # it expires on its own

    @contextmanager
    def failing_as(
        self,
        what: str,
        secret: str | None = None,
        tolerate: tuple[grpc.StatusCode, ...] = (),
        gone: bool = False,
    ) -> Iterator[None]:
        """containerd's errors inside the block become ``EngineFailure("WHAT: reason")``:
        :class:`EngineUnreachable` when the daemon does not answer, :class:`ContainerGone` for
        NOT_FOUND with ``gone``; codes in ``tolerate`` end the block quietly."""
        try:
            yield
        except grpc.RpcError as exc:
            code = status_code(exc)
            details = one_line((exc.details() if isinstance(exc, grpc.Call) else None) or str(exc))
            if code in tolerate:
                return
            if code in UNREACHABLE:
                raise EngineUnreachable(
                    without_secret(f"{what}: {self.service} is not reachable: {details}", secret)
                ) from None
            message = without_secret(f"{what}: {details}", secret)
            found_gone = gone and code is grpc.StatusCode.NOT_FOUND
            raise (ContainerGone(message) if found_gone else engine_failure(message)) from None

    def found(self, what: str, call: Callable[[], T]) -> T | None:
        """``call()``'s answer, ``None`` when containerd says NOT_FOUND; other errors as
        :meth:`failing_as` words them."""
        with self.failing_as(what):
            try:
                return call()
            except grpc.RpcError as exc:
                if status_code(exc) is grpc.StatusCode.NOT_FOUND:
                    return None
                raise
        return None  # not reached: failing_as raises

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()
