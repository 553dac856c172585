"""Creating a Job or adopting the one a crashed worker left, and deleting it for good.

Job names are deterministic (workflow + action), so a worker that restarts after a crash and is
handed the same action again finds the Job it had started: creating it answers 409, and the
existing Job is followed to its end and its result used instead of running the action twice.
Deletion is foreground (the pods go first) and waits, through a watch, until the Job is gone.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from tinklet_core.model import Action
from tinklet_kube.errors import KubeApiError
from tinklet_kube.watch import ObjectWatch, WatchSource

JSON = dict[str, Any]
DELETE_WAIT_SECONDS = 30.0


class JobApi(WatchSource, Protocol):
    """What this module needs from the API (see :class:`tinklet_kube.api.KubeApi`)."""

    def create_job(self, manifest: JSON) -> JSON:
        """Create a Job."""
        ...

    def read_job(self, name: str) -> JSON | None:
        """The Job called ``name`` or ``None``."""
        ...

    def delete_job(self, name: str) -> bool:
        """Delete a Job (foreground); ``False`` if it was gone."""
        ...


def create_or_adopt(api: JobApi, manifest: JSON, action: Action, log: logging.Logger) -> JSON:
    """The created Job, or the existing Job of the same name when it runs this very action.

    A Job being deleted is waited out and created anew; a Job of another action under the
    same name (a hash collision, or a hand-made Job) is an error.
    """
    name = str(manifest["metadata"]["name"])
    for _attempt in range(3):
        try:
            return api.create_job(manifest)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
        existing = api.read_job(name)
        if existing is None:
            continue
        metadata = existing.get("metadata", {})
        if metadata.get("deletionTimestamp"):
            log.info("Job %s is being deleted; waiting to create it again", name)
            wait_until_gone(api, name, DELETE_WAIT_SECONDS)
            continue
        if not _runs(existing, action):
            raise KubeApiError(f"a Job named {name} exists and runs something else", status=409)
        log.info("adopting Job %s left by an earlier worker for %s", name, action.label)
        return existing
    raise KubeApiError(f"Job {name} keeps reappearing; is another worker running this action?", status=409)


def _runs(job: JSON, action: Action) -> bool:
    annotations = job.get("metadata", {}).get("annotations") or {}
    return bool(
        annotations.get("tinklet.workflow") == action.workflow_id
        and annotations.get("tinklet.action") == action.action_id
    )


def delete_and_wait(api: JobApi, name: str, timeout: float) -> bool:
    """Delete the Job and its pods; ``True`` once it is gone, ``False`` if ``timeout`` ran out."""
    if not api.delete_job(name):
        return True
    return wait_until_gone(api, name, timeout)


def wait_until_gone(api: WatchSource, name: str, timeout: float) -> bool:
    """Watch the Job until it no longer exists; ``False`` if it still does after ``timeout``."""
    watch = ObjectWatch(
        api, "jobs", field_selector=f"metadata.name={name}", server_timeout=max(1, int(timeout))
    )
    timer = threading.Timer(timeout, watch.close)
    timer.daemon = True
    timer.start()
    try:
        return any(event.type == "DELETED" or (event.type == "SYNC" and not event.objects) for event in watch)
    finally:
        timer.cancel()
        watch.close()
