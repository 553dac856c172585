"""Images in containerd's stores, by the API alone: blobs in the content store, image records,
layers unpacked into snapshots, and an image's run configuration.

This is what containerd's Go client does on the client side (containerd 1.6 has no daemon-side
pull): a pull (:mod:`tinklet_containerd.pull`) or an import (:func:`import_oci_archive`) writes
the layers, the config and the manifest with :meth:`ImageStore.write_blob`, names the manifest
with :meth:`ImageStore.create_image`, and unpacks it with :meth:`ImageStore.unpack`. All of it
under one lease, and with the garbage collector's reference labels containerd's own client
sets (manifest → config and layers, config → the unpacked snapshot), so nothing is collected
half-way and everything goes with the image.
"""

from __future__ import annotations

import hashlib
import json
import platform
import secrets
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from tinklet_containerd.api.services.content.v1 import content_pb2
from tinklet_containerd.api.services.diff.v1 import diff_pb2
from tinklet_containerd.api.services.images.v1 import images_pb2
from tinklet_containerd.api.services.snapshots.v1 import snapshots_pb2
from tinklet_containerd.api.types import descriptor_pb2
from tinklet_containerd.client import CALL_TIMEOUT, Containerd, status_code
from tinklet_core.containers.engine import EngineFailure

DEFAULT_SNAPSHOTTER = "overlayfs"
#: Bytes per message of a content write.
WRITE_CHUNK = 1024 * 1024

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def host_architecture() -> str:
    """This machine's architecture as OCI platforms name it (``amd64``, ``arm64``…)."""
    machine = platform.machine()
    return _ARCHITECTURES.get(machine, machine)


def digest_of(data: bytes) -> str:
    """``sha256:HEX`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """The OCI chain id of each layer stack: the snapshot names of an unpacked image."""
    chain: list[str] = []
    for diff_id in diff_ids:
        chain.append(diff_id if not chain else digest_of(f"{chain[-1]} {diff_id}".encode()))
    return chain


@dataclass(frozen=True)
class Blob:
    """A descriptor: what a manifest, an index or an image record points at."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Blob:
        """From an OCI descriptor object."""
        return cls(
            str(entry.get("mediaType", "")),
            str(entry["digest"]),
            int(entry["size"]),
            dict(entry.get("annotations") or {}),
        )

    def proto(self) -> descriptor_pb2.Descriptor:
        """As containerd's ``Descriptor`` message."""
        return descriptor_pb2.Descriptor(media_type=self.media_type, digest=self.digest, size=self.size)


@dataclass(frozen=True)
class ImageConfig:
    """What an image says about running it (its config's ``config`` object)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ImageConfig:
        """From an image config document."""
        config = document.get("config") or {}
        return cls(
            tuple(config.get("Entrypoint") or ()),
            tuple(config.get("Cmd") or ()),
            tuple(config.get("Env") or ()),
            str(config.get("WorkingDir") or ""),
            str(config.get("User") or ""),
        )


def manifest_labels(manifest: dict[str, Any]) -> dict[str, str]:
    """The garbage collector's references of a manifest (config, layers) or index (manifests)."""
    labels: dict[str, str] = {}
    if "config" in manifest:
        labels["containerd.io/gc.ref.content.config"] = manifest["config"]["digest"]
    for index, layer in enumerate(manifest.get("layers") or ()):
        labels[f"containerd.io/gc.ref.content.l.{index}"] = layer["digest"]
    for index, entry in enumerate(manifest.get("manifests") or ()):
        labels[f"containerd.io/gc.ref.content.m.{index}"] = entry["digest"]
    return labels


def pick_manifest(index: dict[str, Any]) -> Blob:
    """This host's manifest in an image index; :class:`EngineFailure` when it has none."""
    wanted = host_architecture()
    for entry in index.get("manifests") or ():
        found = entry.get("platform") or {}
        if found.get("os", "linux") == "linux" and found.get("architecture", wanted) == wanted:
            return Blob.from_json(entry)
    raise EngineFailure(f"the image has no manifest for linux/{wanted}")


class ImageStore:
    """containerd's content store, image records and snapshots, through ``client``."""

    def __init__(self, client: Containerd, snapshotter: str = DEFAULT_SNAPSHOTTER) -> None:
        self.client = client
        self.snapshotter = snapshotter

    # -- content -------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """True when the content store holds ``digest``."""
        request = content_pb2.InfoRequest(digest=digest)
        info = partial(
            self.client.content.Info, request, metadata=self.client.metadata(), timeout=CALL_TIMEOUT
        )
        return self.client.found("content info failed", info) is not None

    def read_blob(self, digest: str) -> bytes:
        """The whole blob ``digest`` (for manifests and configs: small)."""
        with self.client.failing_as(f"reading {digest} failed"):
            stream = self.client.content.Read(
                content_pb2.ReadContentRequest(digest=digest),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            )
            return b"".join(response.data for response in stream)

    def write_blob(
        self,
        lease: str,
        digest: str,
        size: int,
        chunks: Iterable[bytes],
        labels: dict[str, str] | None = None,
    ) -> None:
        """Store the blob ``digest`` of ``size`` bytes from ``chunks`` (skipped when present);
        containerd checks the digest at commit."""
        if self.has_blob(digest):
            return
        ref = f"tinklet-{digest}-{secrets.token_hex(4)}"
        source_failed: list[Exception] = []

        def requests() -> Iterator[content_pb2.WriteContentRequest]:
            offset = 0
            try:
                for chunk in chunks:
                    for start in range(0, len(chunk), WRITE_CHUNK):
                        piece = chunk[start : start + WRITE_CHUNK]
                        yield content_pb2.WriteContentRequest(
                            action=content_pb2.WRITE,
                            ref=ref,
                            total=size,
                            expected=digest,
                            offset=offset,
                            data=piece,
                        )
                        offset += len(piece)
            except Exception as exc:  # raised below, not swallowed by grpc's request thread
                source_failed.append(exc)
                return  # no commit: containerd drops the partial write with the lease
            yield content_pb2.WriteContentRequest(
                action=content_pb2.COMMIT,
                ref=ref,
                total=size,
                expected=digest,
                offset=offset,
                labels=labels or {},
            )

        try:
            with self.client.failing_as(
                f"writing {digest} failed", tolerate=(grpc.StatusCode.ALREADY_EXISTS,)
            ):
                for _ in self.client.content.Write(requests(), metadata=self.client.metadata(lease)):
                    pass
        finally:
            if source_failed:
                raise source_failed[0]

    def label_blob(self, digest: str, labels: dict[str, str]) -> None:
        """Add ``labels`` to the blob ``digest``."""
        info = content_pb2.Info(digest=digest, labels=labels)
        mask = field_mask_pb2.FieldMask(paths=[f"labels.{key}" for key in labels])
        with self.client.failing_as(f"labelling {digest} failed"):
            self.client.content.Update(
                content_pb2.UpdateRequest(info=info, update_mask=mask),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            )

    # -- image records -------------------------------------------------------------------

    def image_target(self, name: str) -> Blob | None:
        """What the image record ``name`` points at, ``None`` when there is none."""
        request = images_pb2.GetImageRequest(name=name)
        get = partial(self.client.images.Get, request, metadata=self.client.metadata(), timeout=CALL_TIMEOUT)
        found = self.client.found(f"image lookup failed for {name}", get)
        if found is None:
            return None
        return Blob(found.image.target.media_type, found.image.target.digest, found.image.target.size)

    def create_image(self, name: str, target: Blob) -> None:
        """Name ``target`` as the image ``name`` (replacing what the name pointed at)."""
        image = images_pb2.Image(name=name, target=target.proto())
        with self.client.failing_as(f"image create failed for {name}"):
            try:
                self.client.images.Create(
                    images_pb2.CreateImageRequest(image=image),
                    metadata=self.client.metadata(),
                    timeout=CALL_TIMEOUT,
                )
            except grpc.RpcError as exc:
                if status_code(exc) is not grpc.StatusCode.ALREADY_EXISTS:
                    raise
                self.client.images.Update(
                    images_pb2.UpdateImageRequest(image=image),
                    metadata=self.client.metadata(),
                    timeout=CALL_TIMEOUT,
                )

    def manifest(self, target: Blob) -> dict[str, Any]:
        """The host's manifest of ``target`` (a manifest, or an index holding one)."""
        document: dict[str, Any] = json.loads(self.read_blob(target.digest))
        if target.media_type in INDEX_TYPES or "manifests" in document:
            document = json.loads(self.read_blob(pick_manifest(document).digest))
        return document

    def config(self, name: str) -> tuple[dict[str, Any], ImageConfig]:
        """The manifest of image ``name`` and its run configuration."""
        target = self.image_target(name)
        if target is None:
            raise EngineFailure(f"image {name} is not present")
        manifest = self.manifest(target)
        document = json.loads(self.read_blob(manifest["config"]["digest"]))
        return manifest, ImageConfig.from_json(document)

    # -- unpacking -----------------------------------------------------------------------

    def snapshot_exists(self, key: str) -> bool:
        """True when the snapshotter has ``key``."""
        request = snapshots_pb2.StatSnapshotRequest(snapshotter=self.snapshotter, key=key)
        stat = partial(
            self.client.snapshots.Stat, request, metadata=self.client.metadata(), timeout=CALL_TIMEOUT
        )
        return self.client.found("snapshot stat failed", stat) is not None

    def unpack(self, lease: str, manifest: dict[str, Any]) -> str:
        """Apply the manifest's layers, each onto the last, as committed snapshots named by
        chain id (layers already unpacked are skipped); the top one's name. The config blob
        gets the reference that keeps the snapshots as long as the image."""
        config_digest = manifest["config"]["digest"]
        document = json.loads(self.read_blob(config_digest))
        diff_ids = document["rootfs"]["diff_ids"]
        layers = [Blob.from_json(entry) for entry in manifest.get("layers") or ()]
        if len(layers) != len(diff_ids):
            raise EngineFailure("the image's manifest and config disagree on its layers")
        chain = chain_ids(diff_ids)
        metadata = self.client.metadata(lease)
        for index, (layer, chain_id) in enumerate(zip(layers, chain, strict=True)):
            if self.snapshot_exists(chain_id):
                continue
            parent = chain[index - 1] if index else ""
            key = f"extract-{secrets.token_hex(6)} {chain_id}"
            with self.client.failing_as(f"unpacking layer {layer.digest} failed"):
                mounts = self.client.snapshots.Prepare(
                    snapshots_pb2.PrepareSnapshotRequest(
                        snapshotter=self.snapshotter, key=key, parent=parent
                    ),
                    metadata=metadata,
                    timeout=CALL_TIMEOUT,
                ).mounts
                try:
                    applied = self.client.diff.Apply(
                        diff_pb2.ApplyRequest(diff=layer.proto(), mounts=mounts), metadata=metadata
                    ).applied
                    if applied.digest != diff_ids[index]:
                        raise EngineFailure(
                            f"unpacking layer {layer.digest} failed: it unpacked to {applied.digest}, "
                            f"not {diff_ids[index]}"
                        )
                    self.client.snapshots.Commit(
                        snapshots_pb2.CommitSnapshotRequest(
                            snapshotter=self.snapshotter, name=chain_id, key=key
                        ),
                        metadata=metadata,
                        timeout=CALL_TIMEOUT,
                    )
                except BaseException:
                    self.remove_snapshot(key)
                    raise
        self.label_blob(config_digest, {f"containerd.io/gc.ref.snapshot.{self.snapshotter}": chain[-1]})
        return chain[-1]

    def remove_snapshot(self, key: str) -> None:
        """Remove the snapshot ``key``; one already gone is fine."""
        with self.client.failing_as("snapshot remove failed", tolerate=(grpc.StatusCode.NOT_FOUND,)):
            self.client.snapshots.Remove(
                snapshots_pb2.RemoveSnapshotRequest(snapshotter=self.snapshotter, key=key),
                metadata=self.client.metadata(),
                timeout=CALL_TIMEOUT,
            )


def import_oci_archive(store: ImageStore, archive: Path, name: str) -> None:
    """Import the image of an OCI image layout tar (``oci-layout``, ``index.json``, ``blobs/``)
    as ``name`` and unpack it: the offline path, no registry involved."""
    with tarfile.open(archive) as tar, store.client.lease("import") as lease:

        def member(path: str) -> bytes:
            extracted = tar.extractfile(path)
            if extracted is None:
                raise EngineFailure(f"{archive}: {path} is missing")
            return extracted.read()

        def blob_path(digest: str) -> str:
            algorithm, _, hexdigest = digest.partition(":")
            return f"blobs/{algorithm}/{hexdigest}"

        index = json.loads(member("index.json"))
        entry = (index.get("manifests") or [None])[0]
        if entry is None:
            raise EngineFailure(f"{archive}: index.json names no image")
        target = Blob.from_json(entry)
        manifest_bytes = member(blob_path(target.digest))
        manifest = json.loads(manifest_bytes)
        if target.media_type in INDEX_TYPES:
            raise EngineFailure(f"{archive}: nested image indexes are not supported")
        for blob in [Blob.from_json(layer) for layer in manifest["layers"]] + [
            Blob.from_json(manifest["config"])
        ]:
            store.write_blob(lease, blob.digest, blob.size, [member(blob_path(blob.digest))])
        store.write_blob(lease, target.digest, target.size, [manifest_bytes], manifest_labels(manifest))
        store.create_image(name, target)
        store.unpack(lease, manifest)
