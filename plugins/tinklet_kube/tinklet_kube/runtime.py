"""The kube runtime: each action runs as a batch/v1 Job in one namespace.

This module is imported with the entry point (``tinklet plugins list`` reads the hooks of
:class:`KubeRuntime` from the class), so it must stay light: the kubernetes client is imported
by the constructor only, when the user chose this runtime.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from tinklet_core.errors import ActionInterrupted, EngineNotReady, RuntimeUnavailable
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Action, Outcome, State
from tinklet_core.runtime import (
    ActionContext,
    RuntimeSettings,
    WaitResult,
    WorkflowEnvironment,
    wait_for_exit,
)
from tinklet_kube.defaults import DEFAULT_HELPER_IMAGE, DEFAULT_PULL_LIMIT, DEFAULT_SCHEDULE_LIMIT
from tinklet_kube.errors import KubeApiError
from tinklet_kube.follow import JobFollower
from tinklet_kube.jobs import DELETE_WAIT_SECONDS, create_or_adopt, delete_and_wait
from tinklet_kube.manifests import (
    JobOptions,
    has_failure_helper,
    job_manifest,
    unsupported_reason,
)
from tinklet_kube.names import job_name
from tinklet_kube.outcome import Limits, with_action_files
from tinklet_kube.pull_secrets import PullSecrets
from tinklet_kube.retry import ApiRetry
from tinklet_kube.watch import JSON

if TYPE_CHECKING:
    from tinklet_kube.api import KubeApi

# When tinklet is shutting down, give the Job's deletion less time: the worker must exit soon.
SHUTDOWN_DELETE_WAIT_SECONDS = 8.0
# How long a finished action's Job deletion is tried again while the API is away (the worker
# takes no other action meanwhile; later, the next action or close tries again).
REMOVE_RETRY_SECONDS = 120.0
# The Job the start-up check asks the server about (dry run: nothing is created or deleted).
START_CHECK_JOB = "tinklet-start-check"
HELPER_OFF = frozenset({"", "none"})
log = logging.getLogger("tinklet.kube")


def helper_image(value: object) -> str | None:
    """The failure-reason helper's image from the ``kube_failure_helper_image`` option: the
    default when unset, ``None`` when turned off (``""`` or ``none``)."""
    if value is None:
        return DEFAULT_HELPER_IMAGE
    image = str(value).strip()
    return None if image.lower() in HELPER_OFF else image


def _shutting_down(action: Action) -> ActionInterrupted:
    return ActionInterrupted(f"action {action.label} stopped: tinklet is shutting down")


class KubeRuntime:
    """Runs tinklet actions as Kubernetes Jobs (see :mod:`tinklet_kube.manifests` for the mapping).

    Options: ``kubeconfig`` (one path or several joined by ``:``; else the in-cluster config,
    else ``~/.kube/config``), ``kube_namespace`` (default: the kubeconfig context's, the pod's
    own in a cluster, else ``default``), ``kube_service_account``, ``kube_allow_host``,
    ``kube_schedule_timeout`` and ``kube_pull_timeout`` (seconds), ``kube_failure_helper_image``
    (see :func:`helper_image`). The constructor imports the kubernetes client and checks, without
    side effects, that actions can run in the namespace (and that the server keeps the helper's
    native-sidecar field; if not, actions run without the helper).
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        from tinklet_kube.api import KubeApi, load_configuration

        options = settings.options
        kubeconfig = options.get("kubeconfig")
        configuration, context_namespace = load_configuration(str(kubeconfig) if kubeconfig else None)
        namespace = str(options.get("kube_namespace") or context_namespace or "default")
        self._settings = settings
        self._service_account = str(options.get("kube_service_account") or "") or None
        self._allow_host = bool(options.get("kube_allow_host") or False)
        self._limits = Limits(
            schedule=float(options.get("kube_schedule_timeout") or DEFAULT_SCHEDULE_LIMIT),
            pull=float(options.get("kube_pull_timeout") or DEFAULT_PULL_LIMIT),
        )
        self._helper_image = helper_image(options.get("kube_failure_helper_image"))
        self._api: KubeApi = KubeApi(configuration, namespace)
        try:
            self._check_namespace()
        except KubeApiError as exc:
            self._api.close()
            error = EngineNotReady if exc.passing else RuntimeUnavailable
            raise error(f"cannot use namespace {namespace!r}: {exc}") from None
        self._secrets = PullSecrets(self._api)
        self._undeleted: set[str] = set()
        self._api.outage.arm()

    def _check_namespace(self) -> None:
        """What every action needs, asked without side effects: a server-side dry-run create of a
        Job shaped like the actions' (it tests the namespace, RBAC and admission at once), a
        dry-run delete, and list and watch of Jobs and pods. Secrets are not checked: only
        workflows with registry credentials need them."""
        check = Action(
            workflow_id=START_CHECK_JOB,
            task_id="check",
            action_id="check",
            agent_id=self._settings.agent_id or "check",
            name="check",
            image="tinklet-start-check",
        )
        answer = self._api.dry_run_create_job(job_manifest(check, START_CHECK_JOB, self._job_options(None)))
        pod_spec = answer.get("spec", {}).get("template", {}).get("spec") or {}
        if self._helper_image and not has_failure_helper(pod_spec):
            log.warning(
                "the Kubernetes API server dropped restartPolicy: Always of an init container "
                "(native sidecars need Kubernetes >= 1.29 with the SidecarContainers feature): "
                "actions run without the failure-reason helper, only failure-message is reported"
            )
            self._helper_image = None
        self._api.dry_run_delete_job(START_CHECK_JOB)
        for kind in ("jobs", "pods"):
            listing = self._api.list(kind, limit=1)
            version = str(listing.get("metadata", {}).get("resourceVersion") or "")
            stream = self._api.watch(kind, resource_version=version, timeout_seconds=1)
            stream.close()

    def _job_options(self, pull_secret: str | None) -> JobOptions:
        return JobOptions(
            namespace=self._api.namespace,
            privilege=self._settings.privilege,
            pull_policy=self._settings.pull_policy,
            service_account=self._service_account,
            allow_host=self._allow_host,
            pull_secret=pull_secret,
            proxy=self._settings.proxy,
            failure_helper_image=self._helper_image,
        )

    def close(self) -> None:
        """Delete the Jobs an API outage left, then close the API client."""
        self._delete_undeleted()
        self._api.close()

    @hookimpl
    def tinklet_prepare_environment(self, environment: WorkflowEnvironment) -> None:
        """Create the workflow's image pull Secret when its first image needs credentials."""
        credentials = environment.registry_credentials(environment.first_action.image)
        if credentials is not None:
            self._secrets.ensure(environment.workflow_id, environment.agent_id, credentials)

    @hookimpl
    def tinklet_cleanup_environment(self, environment: WorkflowEnvironment) -> None:
        """Delete the workflow's image pull Secret, if this worker made one."""
        self._secrets.remove(environment.workflow_id, environment.agent_id)

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        """Run the action as a Job, stream its log, and report how it ended."""
        action = context.action
        problem = unsupported_reason(action, self._allow_host)
        if problem is not None:
            return Outcome(State.FAILED, reason=problem)
        name = job_name(action.workflow_id, action.action_id)
        try:
            secret = self._secrets.for_action(
                action.workflow_id, action.agent_id, context.registry_credentials(action.image)
            )
        except KubeApiError as exc:
            return Outcome(State.FAILED, reason=str(exc))
        self._delete_undeleted()
        started = time.monotonic()
        try:
            job = self._create(action, job_manifest(action, name, self._job_options(secret)), context)
        except KubeApiError as exc:
            return Outcome(State.FAILED, reason=f"cannot create Job {name}: {exc}")
        if job is None:
            return Outcome(State.TIMEOUT, reason=f"timed out after {action.timeout}s (the API was away)")
        follower = JobFollower(self._api, job, context.output, context.log, self._limits)
        follower.start()
        try:
            waited = wait_for_exit(follower.finished, context)
            if waited is WaitResult.CANCELLED:
                raise _shutting_down(action)
            if waited is WaitResult.TIMED_OUT:
                limit = action.timeout if action.timeout > 0 else round(time.monotonic() - started)
                timeout = Outcome(State.TIMEOUT, reason=f"timed out after {limit}s")
                return self._after_kill(name, follower, timeout, context.log)
            return follower.outcome or Outcome(State.FAILED, reason="the Job ended without a result")
        finally:
            follower.stop()
            self._remove_job(name, context)

    def _create(self, action: Action, manifest: JSON, context: ActionContext) -> JSON | None:
        """The action's Job, created or adopted; tried again while the API is away (creating is
        safe to repeat: the name is the action's, a second create adopts). ``None`` when the
        deadline passed first; :class:`ActionInterrupted` on shutdown."""
        retry = ApiRetry()
        while True:
            try:
                return create_or_adopt(self._api, manifest, action, context.log)
            except KubeApiError as exc:
                if not exc.passing:
                    raise
                left = context.seconds_left()
                if left is not None and left <= 0:
                    return None
                wait = retry.delay(exc) if left is None else min(left, retry.delay(exc))
                if context.cancelled.wait(wait):
                    raise _shutting_down(action) from None

    def _after_kill(
        self, name: str, follower: JobFollower, outcome: Outcome, action_log: logging.Logger
    ) -> Outcome:
        """Stop the action (its Job is deleted, the pod gets its grace period) and ``outcome``
        with the files the killed pod's final status carries, waited for ``limits.reason``
        seconds at most."""
        try:
            self._api.delete_job(name)
        except KubeApiError as exc:
            action_log.warning("cannot delete Job %s: %s", name, exc)
            return outcome
        follower.files_settled.wait(self._limits.reason)
        message, reason = follower.files()
        return with_action_files(outcome, message, reason)

    def _remove_job(self, name: str, context: ActionContext) -> None:
        """Delete the Job (and its pods) and wait until it is gone; while the API is away, try
        again until it answers (at most ``REMOVE_RETRY_SECONDS``, less on shutdown), else leave
        it to :meth:`_delete_undeleted` before the next action and at close."""
        stopping = context.cancelled.is_set()
        wait = SHUTDOWN_DELETE_WAIT_SECONDS if stopping else DELETE_WAIT_SECONDS
        give_up = time.monotonic() + (SHUTDOWN_DELETE_WAIT_SECONDS if stopping else REMOVE_RETRY_SECONDS)
        retry = ApiRetry()
        while True:
            try:
                if not delete_and_wait(self._api, name, wait):
                    context.log.warning("Job %s is still being deleted after %.0fs", name, wait)
                return
            except KubeApiError as exc:
                if not exc.passing or time.monotonic() >= give_up:
                    context.log.warning("cannot delete Job %s: %s", name, exc)
                    if exc.passing:
                        self._undeleted.add(name)
                    return
                time.sleep(min(retry.delay(exc), max(0.0, give_up - time.monotonic())))

    def _delete_undeleted(self) -> None:
        """Delete the Jobs an API outage kept :meth:`_remove_job` from deleting."""
        for name in sorted(self._undeleted):
            try:
                self._api.delete_job(name)
            except KubeApiError as exc:
                log.warning("cannot delete Job %s left by an API outage yet: %s", name, exc)
                continue
            log.info("deleted Job %s, left by an API outage", name)
            self._undeleted.discard(name)
