"""The client-side pull: what containerd's Go client does when the daemon has no Transfer
service (containerd 1.6), from the registry's HTTP API into containerd's stores.

Resolve the reference's manifest on the first host of :func:`~tinklet_containerd.hosts.registry_hosts`
that answers (mirrors first, as ``hosts.toml`` orders them), pick this host's platform from an
index, stream the config and each missing layer into the content store, store the manifest
(and index) with the garbage collector's references, name the image and unpack it
(:class:`~tinklet_containerd.images.ImageStore`), all under one lease, so a half-pulled image is
not collected mid-pull and a failed one is collected afterwards. The registry's login comes
from the registry hook (``credentials``); the password never appears in a failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from tinklet_containerd.hosts import DEFAULT_CERTS_DIR, registry_hosts
from tinklet_containerd.images import INDEX_TYPES, Blob, ImageStore, digest_of, manifest_labels, pick_manifest
from tinklet_containerd.reference import Reference, normalise
from tinklet_containerd.registry import RegistryClient, RegistryFailure
from tinklet_core.containers.engine import EngineFailure, EngineUnreachable, PullEvents, PullFailure
from tinklet_core.model import RegistryCredentials
from tinklet_core.proxy import ProxySettings
from tinklet_core.runtime_helpers import without_secret


def _progress(blob: Blob, chunks: Iterator[bytes], on_event: PullEvents | None) -> Iterator[bytes]:
    """``chunks`` passed on, with Docker-style progress events for the layer."""
    layer = blob.digest.removeprefix("sha256:")[:12]
    done = 0
    for chunk in chunks:
        done += len(chunk)
        if on_event is not None:
            on_event(
                {
                    "id": layer,
                    "status": "Downloading",
                    "progressDetail": {"current": done, "total": blob.size},
                }
            )
        yield chunk
    if on_event is not None:
        on_event({"id": layer, "status": "Pull complete"})


class Puller:
    """Pulls images into ``store`` from the registries ``certs_dir`` describes."""

    def __init__(
        self, store: ImageStore, certs_dir: str = DEFAULT_CERTS_DIR, proxy: ProxySettings | None = None
    ) -> None:
        self.store = store
        self.certs_dir = certs_dir
        self.proxy = proxy or ProxySettings()

    def pull(
        self, image: str, credentials: RegistryCredentials | None, on_event: PullEvents | None = None
    ) -> None:
        """Pull and unpack ``image``; :class:`PullFailure` with the registry's words."""
        secret = credentials.password if credentials else None
        reference = Reference.parse(image)
        failures: list[str] = []
        try:
            hosts = registry_hosts(reference.registry, self.certs_dir)
        except EngineFailure as exc:
            raise PullFailure(str(exc)) from None
        for host in hosts:
            client = RegistryClient(host, reference.repository, credentials, self.proxy)
            try:
                media_type, manifest_bytes = client.manifest(reference.object)
            except RegistryFailure as exc:
                failures.append(str(exc))
                continue
            try:
                self._store(client, normalise(image), media_type, manifest_bytes, on_event)
            except RegistryFailure as exc:
                raise PullFailure(without_secret(str(exc), secret)) from None
            except EngineUnreachable:
                raise
            except EngineFailure as exc:
                raise PullFailure(without_secret(str(exc), secret)) from None
            return
        raise PullFailure(without_secret("; ".join(failures) or "no registry host can pull", secret))

    def _store(
        self,
        client: RegistryClient,
        name: str,
        media_type: str,
        manifest_bytes: bytes,
        on_event: PullEvents | None,
    ) -> None:
        document = json.loads(manifest_bytes)
        media_type = str(document.get("mediaType") or media_type)
        target = Blob(media_type, digest_of(manifest_bytes), len(manifest_bytes))
        store = self.store
        with store.client.lease("pull") as lease:
            index: tuple[bytes, dict[str, str]] | None = None
            if media_type in INDEX_TYPES or "manifests" in document:
                chosen = pick_manifest(document)
                position = [entry["digest"] for entry in document["manifests"]].index(chosen.digest)
                index = manifest_bytes, {f"containerd.io/gc.ref.content.m.{position}": chosen.digest}
                media_type, manifest_bytes = client.manifest(chosen.digest)
                if digest_of(manifest_bytes) != chosen.digest:
                    raise RegistryFailure(
                        f"{client.host.host}: manifest {chosen.digest} does not match its digest"
                    )
                document = json.loads(manifest_bytes)
            config = Blob.from_json(document["config"])
            blobs = [Blob.from_json(layer) for layer in document.get("layers") or ()] + [config]
            for blob in blobs:
                if not store.has_blob(blob.digest):
                    store.write_blob(
                        lease, blob.digest, blob.size, _progress(blob, client.blob(blob.digest), on_event)
                    )
                elif on_event is not None:
                    on_event({"id": blob.digest.removeprefix("sha256:")[:12], "status": "Already exists"})
            manifest_digest = digest_of(manifest_bytes)
            store.write_blob(
                lease, manifest_digest, len(manifest_bytes), [manifest_bytes], manifest_labels(document)
            )
            if index is not None:
                store.write_blob(lease, target.digest, target.size, [index[0]], index[1])
            else:
                target = Blob(media_type, manifest_digest, len(manifest_bytes))
            store.create_image(name, target)
            store.unpack(lease, document)
