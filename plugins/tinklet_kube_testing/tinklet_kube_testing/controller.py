"""The test API server's Job controller and garbage collector, for one-pod Jobs.

Like Kubernetes 1.31: a new Job gets its selector and the ``controller-uid``/``job-name`` labels
(legacy and ``batch.kubernetes.io/`` forms), one pod (``<job>-xxxxx``, owned by the Job), and a
status. A pod that succeeds completes the Job (``SuccessCriteriaMet``, then ``Complete``); one that
fails fails it (``FailureTarget`` + ``Failed``, reason ``BackoffLimitExceeded``: tinklet's Jobs
never retry). ``activeDeadlineSeconds`` is timed from the Job's start: the Job gets
``FailureTarget`` with reason ``DeadlineExceeded``, its pods are deleted (their containers
killed), then ``Failed`` with the same reason. Deletion honours ``propagationPolicy``:
``Foreground`` marks the Job (``deletionTimestamp``, finalizer ``foregroundDeletion``), deletes
its pods and then the Job; ``Background`` deletes the Job then its pods; ``Orphan`` (the default
for batch/v1 Jobs) leaves the pods without an owner. The switches of :mod:`.behaviour` delay its
reaction to a pod's end, leave pods unschedulable, and drop the legacy labels.
"""

from __future__ import annotations

import contextlib
import random
import threading
from typing import Any

from tinklet_kube_testing.behaviour import ServerBehaviour
from tinklet_kube_testing.kubelet import DockerKubelet
from tinklet_kube_testing.store import ObjectStore, Selector, StatusError, name_of, now
from tinklet_kube_testing.validation import validate_job

JSON = dict[str, Any]
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"
SUCCESS = ("SuccessCriteriaMet", "Complete")
FAILURE = ("FailureTarget", "Failed")


def _condition(kind: str, reason: str = "", message: str = "") -> JSON:
    stamp = now()
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
    }


def _conditions(job: JSON) -> set[str]:
    return {
        c.get("type", "") for c in job.get("status", {}).get("conditions") or () if c.get("status") == "True"
    }


def _job_labels(name: str, uid: str, legacy: bool) -> dict[str, str]:
    labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name}
    if legacy:
        labels.update({"controller-uid": uid, "job-name": name})
    return labels


class JobController:
    """Turns Jobs into pods and pod results into Job conditions."""

    def __init__(self, store: ObjectStore, behaviour: ServerBehaviour | None = None) -> None:
        self._store = store
        self._behaviour = behaviour or ServerBehaviour()
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}
        self.kubelet: DockerKubelet | None = None

    def create_job(self, namespace: str, job: JSON) -> JSON:
        """Validate and store a Job, then start its pod and its deadline timer."""
        validate_job(job)
        created = self._store.create("jobs", namespace, {**job, "status": {}})
        name, uid = name_of(created), created["metadata"]["uid"]
        labels = _job_labels(name, uid, self._behaviour.legacy_labels)

        def defaults(obj: JSON) -> None:
            spec = obj["spec"]
            spec.setdefault("backoffLimit", 6)
            spec.update(
                completions=1,
                parallelism=1,
                selector={"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            )
            template_meta = spec["template"].setdefault("metadata", {})
            template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}
            obj["status"] = {"startTime": now(), "active": 1, "ready": 0, "terminating": 0}

        started = self._store.update("jobs", namespace, name, defaults)
        pod_manifest = self._pod_for(started, self._behaviour.legacy_labels)
        if self._behaviour.refuse_pods:
            self._failed_create(started, name_of(pod_manifest), self._behaviour.refuse_pods)
        else:
            pod = self._store.create("pods", namespace, pod_manifest)
            if self._behaviour.unschedulable:
                self._unschedulable(pod, self._behaviour.unschedulable)
            elif self.kubelet is not None:
                self.kubelet.start_pod(pod)
        deadline = started["spec"].get("activeDeadlineSeconds")
        if deadline:
            timer = threading.Timer(float(deadline), self._deadline, args=(namespace, name, uid))
            timer.daemon = True
            with self._lock:
                self._timers[uid] = timer
            timer.start()
        return started

    def _failed_create(self, job: JSON, pod_name: str, refusal: str) -> None:
        metadata = job["metadata"]
        stamp = now()
        self._store.create(
            "events",
            metadata["namespace"],
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name_of(job)}.{random.getrandbits(48):012x}"},
                "involvedObject": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name_of(job),
                    "namespace": metadata["namespace"],
                    "uid": metadata["uid"],
                },
                "type": "Warning",
                "reason": "FailedCreate",
                "message": f'Error creating: pods "{pod_name}" is forbidden: {refusal}',
                "source": {"component": "job-controller"},
                "count": 1,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
            },
        )

    def _unschedulable(self, pod: JSON, message: str) -> None:
        def mark(obj: JSON) -> None:
            obj["spec"].pop("nodeName", None)
            condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
            obj["status"] = {"phase": "Pending", "conditions": [{**condition, "message": message}]}

        self._store.update("pods", pod["metadata"]["namespace"], name_of(pod), mark)

    @staticmethod
    def _pod_for(job: JSON, legacy: bool) -> JSON:
        name, uid = name_of(job), job["metadata"]["uid"]
        template = job["spec"]["template"]
        suffix = "".join(random.choice(_SUFFIX_CHARS) for _ in range(5))
        metadata = dict(template.get("metadata") or {})
        metadata.update(
            name=f"{(name + '-')[:58]}{suffix}",
            labels={**(metadata.get("labels") or {}), **_job_labels(name, uid, legacy)},
            ownerReferences=[
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        )
        spec = {"terminationGracePeriodSeconds": 30, **template["spec"], "nodeName": "tinklet-test-node"}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": spec,
            "status": {"phase": "Pending"},
        }

    def _pods_of(self, namespace: str, uid: str) -> list[JSON]:
        selector = Selector(f"batch.kubernetes.io/controller-uid={uid}")
        pods, _version = self._store.list("pods", namespace, selector)
        return pods

    def _job_owning(self, pod: JSON) -> JSON | None:
        for owner in pod.get("metadata", {}).get("ownerReferences") or ():
            if owner.get("kind") == "Job" and owner.get("controller"):
                try:
                    job = self._store.get("jobs", pod["metadata"]["namespace"], owner["name"])
                except StatusError:
                    return None
                return job if job["metadata"]["uid"] == owner.get("uid") else None
        return None

    def pod_finished(self, pod: JSON) -> None:
        """The kubelet reports that a pod's container ended: complete or fail its Job (at once, or
        after ``controller_delay``)."""
        delay = self._behaviour.controller_delay
        if delay > 0:
            timer = threading.Timer(delay, self._pod_finished, args=(pod,))
            timer.daemon = True
            timer.start()
        else:
            self._pod_finished(pod)

    def _pod_finished(self, pod: JSON) -> None:
        job = self._job_owning(pod)
        if job is None or _conditions(job) & {*SUCCESS, *FAILURE}:
            return
        succeeded = pod.get("status", {}).get("phase") == "Succeeded"

        def finish(obj: JSON) -> None:
            status = obj.setdefault("status", {})
            conditions = status.setdefault("conditions", [])
            status.update(active=0, ready=0)
            if succeeded:
                status.update(succeeded=1, completionTime=now())
                conditions += [
                    _condition(
                        "SuccessCriteriaMet",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    ),
                    _condition("Complete", "CompletionsReached"),
                ]
            else:
                message = "Job has reached the specified backoff limit"
                status.update(failed=1)
                conditions += [_condition(kind, "BackoffLimitExceeded", message) for kind in FAILURE]

        self._end(job, finish)

    def _end(self, job: JSON, mutate: Any) -> None:
        try:
            self._store.update("jobs", job["metadata"]["namespace"], name_of(job), mutate)
        except StatusError:
            return
        self._cancel_timer(job["metadata"]["uid"])

    def _cancel_timer(self, uid: str) -> None:
        with self._lock:
            timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()

    def _deadline(self, namespace: str, name: str, uid: str) -> None:
        message = "Job was active longer than specified deadline"
        try:
            job = self._store.get("jobs", namespace, name)
        except StatusError:
            return
        if job["metadata"]["uid"] != uid or _conditions(job) & {*SUCCESS, *FAILURE}:
            return

        def target(obj: JSON) -> None:
            obj["status"].setdefault("conditions", []).append(
                _condition("FailureTarget", "DeadlineExceeded", message)
            )

        self._store.update("jobs", namespace, name, target)
        for pod in self._pods_of(namespace, uid):
            if self.kubelet is not None:
                self.kubelet.delete_pod(namespace, name_of(pod))

        def fail(obj: JSON) -> None:
            obj["status"].update(active=0, ready=0, failed=1)
            obj["status"]["conditions"].append(_condition("Failed", "DeadlineExceeded", message))

        self._end(job, fail)

    def delete_job(self, namespace: str, name: str, policy: str | None) -> JSON:
        """Delete a Job per ``policy``; the answer is the Job being deleted or a success Status."""
        job = self._store.get("jobs", namespace, name)
        uid = job["metadata"]["uid"]
        policy = policy or "Orphan"
        if policy not in ("Foreground", "Background", "Orphan"):
            raise StatusError(400, "BadRequest", f"unknown propagationPolicy {policy!r}")
        if job["metadata"].get("deletionTimestamp"):
            return job
        self._cancel_timer(uid)
        if policy == "Foreground":

            def mark(obj: JSON) -> None:
                obj["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
                obj["metadata"]["finalizers"] = [*obj["metadata"].get("finalizers", []), "foregroundDeletion"]

            marked = self._store.update("jobs", namespace, name, mark)
            self._background(self._collect, namespace, name, uid, True)
            return marked
        self._store.remove("jobs", namespace, name)
        if policy == "Background":
            self._background(self._collect, namespace, name, uid, False)
        else:
            for pod in self._pods_of(namespace, uid):

                def orphan(obj: JSON) -> None:
                    obj["metadata"].pop("ownerReferences", None)

                self._store.update("pods", namespace, name_of(pod), orphan)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": "batch", "kind": "jobs", "uid": uid},
        }

    @staticmethod
    def _background(target: Any, *args: object) -> None:
        threading.Thread(target=target, args=args, name="tinklet-kube-gc", daemon=True).start()

    def _collect(self, namespace: str, name: str, uid: str, then_remove_job: bool) -> None:
        for pod in self._pods_of(namespace, uid):
            if self.kubelet is not None:
                self.kubelet.delete_pod(namespace, name_of(pod))
        if then_remove_job:
            with contextlib.suppress(StatusError):
                self._store.remove("jobs", namespace, name)

    def close(self) -> None:
        """Cancel every deadline timer."""
        with self._lock:
            timers = list(self._timers.values())
            self._timers.clear()
        for timer in timers:
            timer.cancel()
