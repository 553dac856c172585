"""What the watches have shown about one Job and its pod, and the Outcome that follows from it.

Pure functions over the API's JSON (time is passed in), so every rule below is testable without a
cluster. Watches on the Job and on its pods are separate streams and Kubernetes orders nothing
across them (a Job can show ``Complete`` before the pods' watch shows the pod running), so the
pod, not the Job, decides:

- the container's ``terminated`` state decides SUCCESS (exit code 0) or FAILED (``exit code N``,
  with the termination reason when it says more: ``exit code 137 (OOMKilled)``), unless the pod
  is being deleted (the Job's deadline, someone's ``kubectl delete``): then the Job decides;
- the Job's ``Failed`` with reason ``DeadlineExceeded`` is TIMEOUT, once the killed pod's final
  status (the action's termination message, the helper's reason) has been seen, or the pod is
  gone, or ``limits.reason`` seconds have passed;
- a terminal Job whose pod is still shown running waits for the pod's final status (the caller
  lists the pods once more to fetch it); a terminal Job whose pod is gone decides alone;
- ``ErrImageNeverPull``, ``InvalidImageName`` and containers that cannot be created
  (``CreateContainerConfigError`` …) fail the action at once; ``ErrImagePull`` and
  ``ImagePullBackOff`` may be transient (the kubelet retries), so they fail it once they have
  lasted ``limits.pull`` seconds;
- the failure-reason helper (a native sidecar, see :mod:`tinklet_kube.manifests`) is an init
  container: its image pull failures hold the action back and count as the action's (the
  reason names the helper and its option); after the action container failed, its
  ``failure-reason`` comes as the helper's termination message once the kubelet has stopped it,
  which may be after the pod's and the Job's end: the outcome waits for it ``limits.reason``
  seconds at most, then is reported without it; a helper that runs while the action stays
  ``PodInitializing`` for ``limits.pull`` seconds (a node's kubelet without native sidecars runs
  it as a plain init container, which never ends) fails the action, saying so;
- a pod that is not placed on a node (``Unschedulable``), or a Job that gets no pod at all
  (admission refused it, a quota, a missing service account: the Job's warning Event says which,
  see ``no_pod_reason``), fails the action after ``limits.schedule`` seconds, even when the
  action has no timeout.

:meth:`JobView.trouble` is the reason Kubernetes gives meanwhile, for the log.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tinklet_core.action_failure import MAX_MESSAGE_BYTES, MAX_REASON_BYTES, one_line_text
from tinklet_core.model import Outcome, State
from tinklet_kube.defaults import DEFAULT_PULL_LIMIT, DEFAULT_SCHEDULE_LIMIT
from tinklet_kube.manifests import CONTAINER_NAME, HELPER_NAME, TERMINATION_GRACE_SECONDS, has_failure_helper
from tinklet_kube.watch import WatchEvent

JSON = dict[str, Any]
TRANSIENT_PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff"})
PULL_FAILURES = frozenset({"ErrImageNeverPull", "InvalidImageName"})
START_FAILURES = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
SUCCESS_CONDITIONS = frozenset({"Complete", "SuccessCriteriaMet"})
FAILURE_CONDITIONS = frozenset({"Failed", "FailureTarget"})
_PLAIN_REASONS = frozenset({"", "Error", "Completed"})
# After the action failed, how long to wait for the helper's report of failure-reason: the
# kubelet notices the end (it relists about once a second), stops the helper (it exits at once,
# at worst after the grace period) and reports its status.
DEFAULT_REASON_LIMIT = TERMINATION_GRACE_SECONDS + 4.0
# A kubelet older than 1.29 (or with SidecarContainers off) behind a newer API server runs the
# helper as a plain init container, which never ends: the action would wait for good.
HELD_BACK = (
    "the action did not start within {limit} of the failure-reason helper: the node's kubelet "
    "seems to run it as a plain init container (native sidecars need Kubernetes >= 1.29 on the "
    "node); set --kube-failure-helper-image none"
)
HELPER_HINT = "--kube-failure-helper-image; 'none' runs actions without it"


def _name(obj: JSON) -> str:
    return str(obj.get("metadata", {}).get("name") or "")


@dataclass(frozen=True)
class Limits:
    """How long (seconds) a pod may stay unplaced, an image pull keep failing, and a failed
    action's outcome wait for the failure-reason helper."""

    schedule: float = DEFAULT_SCHEDULE_LIMIT
    pull: float = DEFAULT_PULL_LIMIT
    reason: float = DEFAULT_REASON_LIMIT


@dataclass
class JobView:
    """The latest state of one Job and of the pods it made, fed by two watches.

    ``started`` is when following began (the scheduling limit counts from it); times are
    ``time.monotonic()`` values passed in by the caller.
    """

    started: float = 0.0
    limits: Limits = field(default_factory=Limits)
    job: JSON | None = None
    job_synced: bool = False
    pods: dict[str, JSON] = field(default_factory=dict)
    gone_pods: set[str] = field(default_factory=set)
    pods_synced: bool = False
    pull_failing_since: float | None = None
    held_since: float | None = None  # since when the started helper holds the action back
    pull_error: str = ""
    no_pod_reason: str = ""  # the Job's latest warning Event while it has no pod (FailedCreate …)
    container_done_at: float | None = None  # when the action container's end was first seen
    deadline_seen_at: float | None = None  # when the Job's DeadlineExceeded was first seen

    def apply_job(self, event: WatchEvent) -> None:
        """Take in an event of the Job's watch."""
        if event.type == "SYNC":
            self.job_synced = True
            self.job = event.objects[0] if event.objects else None
        elif event.type == "DELETED":
            self.job = None
        else:
            self.job = event.objects[0]

    def apply_pod(self, event: WatchEvent, now: float = 0.0) -> None:
        """Take in an event of the pods' watch (or a fresh list, as ``SYNC``). A deleted pod's
        last state is kept."""
        if event.type == "SYNC":
            self.pods_synced = True
            listed = {_name(pod): pod for pod in event.objects}
            self.gone_pods |= set(self.pods) - set(listed)
            self.pods.update(listed)
        else:
            pod = event.objects[0]
            self.pods[_name(pod)] = pod
            if event.type == "DELETED":
                self.gone_pods.add(_name(pod))
        if self.container_done_at is None and self.container_done():
            self.container_done_at = now
        self._note_pull(now)
        self._note_held(now)

    def _note_held(self, now: float) -> None:
        pod = self.current_pod()
        helper = init_container_status(pod, HELPER_NAME) if pod is not None else {}
        action = _waiting(container_status(pod)) if pod is not None else {}
        if "running" in (helper.get("state") or {}) and action.get("reason") == "PodInitializing":
            if self.held_since is None:
                self.held_since = now
        else:
            self.held_since = None

    def _note_pull(self, now: float) -> None:
        who, waiting = self.blocking_wait()
        if str(waiting.get("reason") or "") not in TRANSIENT_PULL_FAILURES:
            self.pull_failing_since = None
            return
        if self.pull_failing_since is None:
            self.pull_failing_since = now
        if waiting.get("reason") == "ErrImagePull" or not self.pull_error:
            self.pull_error = who + str(waiting.get("message") or waiting.get("reason"))

    def blocking_wait(self) -> tuple[str, JSON]:
        """What the current pod waits for: ``("", waiting)`` of the action's container, or, while
        the failure-reason helper cannot start (its image), ``(label, waiting)`` of the helper,
        the label naming it and its option."""
        pod = self.current_pod()
        if pod is None:
            return "", {}
        helper = _waiting(init_container_status(pod, HELPER_NAME))
        if str(helper.get("reason") or "") in TRANSIENT_PULL_FAILURES | PULL_FAILURES | START_FAILURES:
            return f"the failure-reason helper ({HELPER_HINT}): ", helper
        return "", _waiting(container_status(pod))

    def current_pod(self) -> JSON | None:
        """The Job's newest pod (a Job with ``backoffLimit: 0`` makes one)."""
        if not self.pods:
            return None
        return max(self.pods.values(), key=lambda pod: str(pod.get("metadata", {}).get("creationTimestamp")))

    def current_status(self) -> JSON:
        """The action container's status in the current pod (``{}`` when there is none yet)."""
        pod = self.current_pod()
        return container_status(pod) if pod is not None else {}

    def pod_to_follow(self) -> str | None:
        """The pod whose log can be streamed now (its container has started), if any."""
        pod = self.current_pod()
        if pod is None or _name(pod) in self.gone_pods:
            return None
        state = container_status(pod).get("state") or {}
        return _name(pod) if ("running" in state or "terminated" in state) else None

    def container_done(self) -> bool:
        """True once the current pod's container has ended, or the pod is gone."""
        pod = self.current_pod()
        if pod is None:
            return False
        return _name(pod) in self.gone_pods or "terminated" in (container_status(pod).get("state") or {})

    def needs_pod_list(self) -> bool:
        """True when the Job has ended but its pod's end has not been seen: the pods' watch runs
        behind, and a fresh list (a consistent read) shows the pod as it is now."""
        if self.job is None or terminal_condition(self.job) is None:
            return False
        return not self.container_done()

    def trouble(self, now: float) -> str | None:
        """Why the action is not running yet, as Kubernetes words it (``None`` when nothing is
        known to be wrong)."""
        pod = self.current_pod()
        if pod is None:
            return f"the Job has no pod yet: {self.no_pod_reason}" if self.no_pod_reason else None
        unscheduled = _unscheduled(pod)
        if unscheduled:
            return f"pod {_name(pod)} is not scheduled: {unscheduled}"
        if self.pull_failing_since is not None:
            return f"pulling the image of pod {_name(pod)} failed, the kubelet retries: {self.pull_error}"
        return None

    def outcome(self, now: float) -> Outcome | None:
        """The action's Outcome, or ``None`` while it is still running. A FAILED or TIMEOUT one
        carries the termination message the action wrote (``/tinkerbell/failure-message``) and
        the reason the failure-reason helper reported (``/tinkerbell/failure-reason``)."""
        outcome = self._outcome(now)
        if outcome is None:
            return None
        return with_action_files(outcome, self.termination_message(), self.helper_reason())

    def helper_reason(self) -> str:
        """The failure-reason helper's termination message in the current pod (``""`` until it
        ended, or without a helper or a reason)."""
        pod = self.current_pod()
        status = init_container_status(pod, HELPER_NAME) if pod is not None else {}
        terminated = (status.get("state") or {}).get("terminated") or {}
        return str(terminated.get("message") or "")

    def files_settled(self) -> bool:
        """True once what the action wrote can no longer change in the pod's status: its container
        has ended and the failure-reason helper (if any) too, or the pod is gone (or there is none:
        nothing will come)."""
        pod = self.current_pod()
        if pod is None or _name(pod) in self.gone_pods:
            return True
        if "terminated" not in (container_status(pod).get("state") or {}):
            return False
        if not has_failure_helper(pod.get("spec") or {}):
            return True
        return "terminated" in (init_container_status(pod, HELPER_NAME).get("state") or {})

    def _awaiting_files(self, since: float | None, now: float) -> bool:
        """True while the action's files may still come: not :meth:`files_settled` and less than
        ``limits.reason`` seconds since ``since`` (the action's end, the deadline)."""
        start = since if since is not None else now
        return not self.files_settled() and now - start < self.limits.reason

    def termination_message(self) -> str:
        """The termination message the kubelet copied from the current pod's container (``""``
        until it ended, or when the action wrote none)."""
        terminated = (self.current_status().get("state") or {}).get("terminated") or {}
        return str(terminated.get("message") or "")

    def _outcome(self, now: float) -> Outcome | None:
        if not (self.job_synced and self.pods_synced):
            return None
        pod = self.current_pod()
        status = container_status(pod) if pod is not None else {}
        condition = terminal_condition(self.job) if self.job is not None else None
        if (
            condition is not None
            and condition[0] in FAILURE_CONDITIONS
            and condition[1] == "DeadlineExceeded"
        ):
            if self.deadline_seen_at is None:
                self.deadline_seen_at = now
            if self._awaiting_files(self.deadline_seen_at, now):
                return None  # the killed pod's final status carries the action's files
            limit = (self.job or {}).get("spec", {}).get("activeDeadlineSeconds")
            return Outcome(State.TIMEOUT, reason=f"timed out after {limit}s")
        terminated = (status.get("state") or {}).get("terminated")
        if terminated and pod is not None and not pod.get("metadata", {}).get("deletionTimestamp"):
            exited = _exited(terminated)
            if exited.state is State.FAILED and self._awaiting_files(self.container_done_at, now):
                return None
            return exited
        if self.job is None:
            return Outcome(State.FAILED, reason="the Job was deleted before the action ended")
        early = self._waiting_outcome(now)
        if early is not None:
            return early
        if condition is not None:
            if pod is not None and _name(pod) not in self.gone_pods and not terminated:
                return None  # the Job has ended; its pod's final status is on the way
            if condition[0] in SUCCESS_CONDITIONS:
                return Outcome(State.SUCCESS, exit_code=0)
            return _failure(pod, status, condition[2] or condition[1])
        return self._unplaced_outcome(pod, now)

    def _waiting_outcome(self, now: float) -> Outcome | None:
        who, waiting = self.blocking_wait()
        reason = str(waiting.get("reason") or "")
        detail = who + str(waiting.get("message") or reason)
        if reason in PULL_FAILURES:
            return Outcome(State.FAILED, reason=f"image pull failed: {detail}")
        if reason in START_FAILURES:
            return Outcome(State.FAILED, reason=f"container could not start ({reason}): {detail}")
        held = self.held_since
        if held is not None and now - held >= self.limits.pull:
            return Outcome(State.FAILED, reason=HELD_BACK.format(limit=f"{self.limits.pull:g}s"))
        since = self.pull_failing_since
        if since is not None and now - since >= self.limits.pull:
            return Outcome(State.FAILED, reason=f"image pull failed: {self.pull_error}")
        return None

    def _unplaced_outcome(self, pod: JSON | None, now: float) -> Outcome | None:
        if now - self.started < self.limits.schedule:
            return None
        limit = f"{self.limits.schedule:g}s"
        if pod is None:
            why = f": {self.no_pod_reason}" if self.no_pod_reason else ""
            return Outcome(State.FAILED, reason=f"no pod was made for the Job within {limit}{why}")
        if _placed(pod):
            return None
        reason = _unscheduled(pod) or "no node was chosen"
        return Outcome(State.FAILED, reason=f"the pod was not scheduled within {limit}: {reason}")


def with_action_files(outcome: Outcome, message: str, reason: str = "") -> Outcome:
    """A FAILED or TIMEOUT ``outcome`` with what the action wrote, each as one bounded, escaped
    line: ``message`` (its container's termination message, ``/tinkerbell/failure-message``) as
    ``action_message`` and ``reason`` (the helper's report of ``failure-reason``) as
    ``action_reason``; others unchanged."""
    if outcome.state not in (State.FAILED, State.TIMEOUT):
        return outcome
    return dataclasses.replace(
        outcome,
        action_message=one_line_text(message.encode(), MAX_MESSAGE_BYTES) or outcome.action_message,
        action_reason=one_line_text(reason.encode(), MAX_REASON_BYTES) or outcome.action_reason,
    )


def _waiting(status: JSON) -> JSON:
    return dict((status.get("state") or {}).get("waiting") or {})


def _placed(pod: JSON) -> bool:
    """True once the pod is on a node (the scheduler bound it, or its kubelet reports on it)."""
    status = pod.get("status", {})
    scheduled = any(
        c.get("type") == "PodScheduled" and c.get("status") == "True" for c in status.get("conditions") or ()
    )
    return bool(pod.get("spec", {}).get("nodeName") or status.get("containerStatuses") or scheduled)


def _unscheduled(pod: JSON) -> str:
    """``reason: message`` of a pod's false ``PodScheduled`` condition, else ``""``."""
    for condition in pod.get("status", {}).get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = str(condition.get("reason") or "")
            message = str(condition.get("message") or "")
            return f"{reason}: {message}" if reason and message else reason or message or "not scheduled"
    return ""


def _exited(terminated: JSON) -> Outcome:
    code = int(terminated.get("exitCode") or 0)
    if code == 0:
        return Outcome(State.SUCCESS, exit_code=0)
    reason = str(terminated.get("reason") or "")
    suffix = "" if reason in _PLAIN_REASONS else f" ({reason})"
    return Outcome(State.FAILED, reason=f"exit code {code}{suffix}", exit_code=code)


def container_status(pod: JSON) -> JSON:
    """The status of the action's container in ``pod`` (``{}`` before the kubelet reports)."""
    for status in pod.get("status", {}).get("containerStatuses") or ():
        if status.get("name") == CONTAINER_NAME:
            return dict(status)
    return {}


def init_container_status(pod: JSON, name: str) -> JSON:
    """The status of init container ``name`` in ``pod`` (``{}`` before the kubelet reports)."""
    for status in pod.get("status", {}).get("initContainerStatuses") or ():
        if status.get("name") == name:
            return dict(status)
    return {}


def terminal_condition(job: JSON) -> tuple[str, str, str] | None:
    """``(type, reason, message)`` of the Job's first true terminal condition, if any."""
    for condition in job.get("status", {}).get("conditions") or ():
        kind = str(condition.get("type") or "")
        if condition.get("status") == "True" and kind in SUCCESS_CONDITIONS | FAILURE_CONDITIONS:
            return kind, str(condition.get("reason") or ""), str(condition.get("message") or "")
    return None


def _failure(pod: JSON | None, status: JSON, job_message: str) -> Outcome:
    terminated = (status.get("state") or {}).get("terminated")
    if terminated and int(terminated.get("exitCode") or 0) != 0:
        return _exited(terminated)
    pod_status = pod.get("status", {}) if pod is not None else {}
    detail = pod_status.get("message") or pod_status.get("reason") or job_message or "the Job failed"
    return Outcome(State.FAILED, reason=str(detail))
