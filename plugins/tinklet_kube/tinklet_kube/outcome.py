"""What the watches have shown about one Job and its pod, and the Outcome that follows from it.

Pure functions over the API's JSON, so every rule below is testable without a cluster:

- a pull failure (``ErrImagePull``, ``ImagePullBackOff``, ``ErrImageNeverPull``,
  ``InvalidImageName``) fails the action at once with the kubelet's message, as a failed pull
  does under docker: nothing waits for the kubelet's back-off;
- a container that cannot be created (``CreateContainerConfigError`` …) fails it at once too;
- otherwise the Job's own terminal condition decides: ``Complete`` is SUCCESS, ``Failed`` with
  reason ``DeadlineExceeded`` is TIMEOUT, any other ``Failed`` is FAILED with the container's exit
  code and termination reason (``exit code 137 (OOMKilled)``) once the pod's final status is in.

A pod that never gets scheduled stays pending: the action's deadline (or ``activeDeadlineSeconds``)
bounds it, as it bounds an action that never ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinklet_core.model import Outcome, State
from tinklet_kube.manifests import CONTAINER_NAME
from tinklet_kube.watch import WatchEvent

JSON = dict[str, Any]
PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})
START_FAILURES = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
SUCCESS_CONDITIONS = frozenset({"Complete", "SuccessCriteriaMet"})
FAILURE_CONDITIONS = frozenset({"Failed", "FailureTarget"})
_PLAIN_REASONS = frozenset({"", "Error", "Completed"})


def _name(obj: JSON) -> str:
    return str(obj.get("metadata", {}).get("name") or "")


@dataclass
class JobView:
    """The latest state of one Job and of the pods it made, fed by two watches."""

    job: JSON | None = None
    job_synced: bool = False
    pods: dict[str, JSON] = field(default_factory=dict)
    gone_pods: set[str] = field(default_factory=set)
    pods_synced: bool = False

    def apply_job(self, event: WatchEvent) -> None:
        """Take in an event of the Job's watch."""
        if event.type == "SYNC":
            self.job_synced = True
            self.job = event.objects[0] if event.objects else None
        elif event.type == "DELETED":
            self.job = None
        else:
            self.job = event.objects[0]

    def apply_pod(self, event: WatchEvent) -> None:
        """Take in an event of the pods' watch. A deleted pod's last state is kept."""
        if event.type == "SYNC":
            self.pods_synced = True
            listed = {_name(pod): pod for pod in event.objects}
            self.gone_pods |= set(self.pods) - set(listed)
            self.pods.update(listed)
            return
        pod = event.objects[0]
        self.pods[_name(pod)] = pod
        if event.type == "DELETED":
            self.gone_pods.add(_name(pod))

    def current_pod(self) -> JSON | None:
        """The Job's newest pod (a Job with ``backoffLimit: 0`` makes one)."""
        if not self.pods:
            return None
        return max(self.pods.values(), key=lambda pod: str(pod.get("metadata", {}).get("creationTimestamp")))

    def pod_to_follow(self) -> str | None:
        """The pod whose log can be streamed now (its container has started), if any."""
        pod = self.current_pod()
        if pod is None or _name(pod) in self.gone_pods:
            return None
        state = container_status(pod).get("state") or {}
        return _name(pod) if ("running" in state or "terminated" in state) else None

    def outcome(self) -> Outcome | None:
        """The action's Outcome, or ``None`` while it is still running."""
        if not (self.job_synced and self.pods_synced):
            return None
        if self.job is None:
            return Outcome(State.FAILED, reason="the Job was deleted before the action ended")
        pod = self.current_pod()
        status = container_status(pod) if pod is not None else {}
        early = _waiting_outcome(status)
        if early is not None:
            return early
        condition = terminal_condition(self.job)
        if condition is None:
            return None
        kind, reason, message = condition
        if kind in FAILURE_CONDITIONS and reason == "DeadlineExceeded":
            limit = self.job.get("spec", {}).get("activeDeadlineSeconds")
            return Outcome(State.TIMEOUT, reason=f"timed out after {limit}s")
        if kind in SUCCESS_CONDITIONS:
            return Outcome(State.SUCCESS, exit_code=0)
        if pod is not None and not pod_finished(pod) and _name(pod) not in self.gone_pods:
            return None  # the Job is failing; its pod's final status is on the way
        return _failure(pod, status, message or reason)


def container_status(pod: JSON) -> JSON:
    """The status of the action's container in ``pod`` (``{}`` before the kubelet reports)."""
    for status in pod.get("status", {}).get("containerStatuses") or ():
        if status.get("name") == CONTAINER_NAME:
            return dict(status)
    return {}


def pod_finished(pod: JSON) -> bool:
    """True once the pod succeeded or failed."""
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def terminal_condition(job: JSON) -> tuple[str, str, str] | None:
    """``(type, reason, message)`` of the Job's first true terminal condition, if any."""
    for condition in job.get("status", {}).get("conditions") or ():
        kind = str(condition.get("type") or "")
        if condition.get("status") == "True" and kind in SUCCESS_CONDITIONS | FAILURE_CONDITIONS:
            return kind, str(condition.get("reason") or ""), str(condition.get("message") or "")
    return None


def _waiting_outcome(status: JSON) -> Outcome | None:
    waiting = (status.get("state") or {}).get("waiting") or {}
    reason = str(waiting.get("reason") or "")
    detail = str(waiting.get("message") or reason)
    if reason in PULL_FAILURES:
        return Outcome(State.FAILED, reason=f"image pull failed: {detail}")
    if reason in START_FAILURES:
        return Outcome(State.FAILED, reason=f"container could not start ({reason}): {detail}")
    return None


def _failure(pod: JSON | None, status: JSON, job_message: str) -> Outcome:
    terminated = (status.get("state") or {}).get("terminated")
    if terminated:
        code = int(terminated.get("exitCode") or 0)
        reason = str(terminated.get("reason") or "")
        suffix = "" if reason in _PLAIN_REASONS else f" ({reason})"
        return Outcome(State.FAILED, reason=f"exit code {code}{suffix}", exit_code=code)
    pod_status = pod.get("status", {}) if pod is not None else {}
    detail = pod_status.get("message") or pod_status.get("reason") or job_message or "the Job failed"
    return Outcome(State.FAILED, reason=str(detail))
