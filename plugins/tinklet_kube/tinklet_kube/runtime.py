"""The kube runtime: each action runs as a batch/v1 Job in one namespace.

This module is imported with the entry point (``tinklet plugins list`` reads the hooks of
:class:`KubeRuntime` from the class), so it must stay light: the kubernetes client is imported
by the constructor only, when the user chose this runtime.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from tinklet_core.errors import ActionInterrupted, RuntimeUnavailable
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State
from tinklet_core.runtime import (
    ActionContext,
    RuntimeSettings,
    WaitResult,
    WorkflowEnvironment,
    wait_for_exit,
)
from tinklet_kube.errors import KubeApiError
from tinklet_kube.follow import JobFollower
from tinklet_kube.jobs import DELETE_WAIT_SECONDS, create_or_adopt, delete_and_wait
from tinklet_kube.manifests import JobOptions, job_manifest, unsupported_reason
from tinklet_kube.names import job_name
from tinklet_kube.pull_secrets import PullSecrets

if TYPE_CHECKING:
    from tinklet_kube.api import KubeApi

# When tinklet is shutting down, give the Job's deletion less time: the worker must exit soon.
SHUTDOWN_DELETE_WAIT_SECONDS = 8.0


class KubeRuntime:
    """Runs tinklet actions as Kubernetes Jobs (see :mod:`tinklet_kube.manifests` for the mapping).

    Options: ``kubeconfig`` (one path or several joined by ``:``; else the in-cluster config,
    else ``~/.kube/config``), ``kube_namespace``, ``kube_service_account``, ``kube_allow_host``.
    The constructor imports the kubernetes client and checks the namespace can be listed.
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        from tinklet_kube.api import KubeApi, load_configuration

        options = settings.options
        kubeconfig = options.get("kubeconfig")
        namespace = str(options.get("kube_namespace") or "default")
        self._settings = settings
        self._service_account = str(options.get("kube_service_account") or "") or None
        self._allow_host = bool(options.get("kube_allow_host") or False)
        self._api: KubeApi = KubeApi(load_configuration(str(kubeconfig) if kubeconfig else None), namespace)
        try:
            self._api.list("jobs", limit=1)
        except KubeApiError as exc:
            self._api.close()
            raise RuntimeUnavailable(f"cannot use namespace {namespace!r}: {exc}") from None
        self._secrets = PullSecrets(self._api)

    def close(self) -> None:
        """Close the API client."""
        self._api.close()

    @hookimpl
    def tinklet_prepare_environment(self, environment: WorkflowEnvironment) -> None:
        """Create the workflow's image pull Secret when its first image needs credentials."""
        credentials = environment.registry_credentials(environment.first_action.image)
        if credentials is not None:
            self._secrets.ensure(environment.workflow_id, environment.agent_id, credentials)

    @hookimpl
    def tinklet_cleanup_environment(self, environment: WorkflowEnvironment) -> None:
        """Delete the workflow's image pull Secret, if there is one."""
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
        options = JobOptions(
            namespace=self._api.namespace,
            privilege=self._settings.privilege,
            pull_policy=self._settings.pull_policy,
            service_account=self._service_account,
            allow_host=self._allow_host,
            pull_secret=secret,
        )
        try:
            job = create_or_adopt(self._api, job_manifest(action, name, options), action, context.log)
        except KubeApiError as exc:
            return Outcome(State.FAILED, reason=f"cannot create Job {name}: {exc}")
        started = time.monotonic()
        uid = str(job.get("metadata", {}).get("uid") or "")
        follower = JobFollower(self._api, name, uid, context.output, context.log)
        follower.start()
        try:
            waited = wait_for_exit(follower.finished, context)
            if waited is WaitResult.CANCELLED:
                raise ActionInterrupted(f"action {action.label} stopped: tinklet is shutting down")
            if waited is WaitResult.TIMED_OUT:
                limit = action.timeout if action.timeout > 0 else round(time.monotonic() - started)
                return Outcome(State.TIMEOUT, reason=f"timed out after {limit}s")
            return follower.outcome or Outcome(State.FAILED, reason="the Job ended without a result")
        finally:
            follower.stop()
            wait = SHUTDOWN_DELETE_WAIT_SECONDS if context.cancelled.is_set() else DELETE_WAIT_SECONDS
            self._remove_job(name, wait, context.log)

    def _remove_job(self, name: str, wait: float, action_log: logging.Logger) -> None:
        try:
            if not delete_and_wait(self._api, name, wait):
                action_log.warning("Job %s is still being deleted after %.0fs", name, wait)
        except KubeApiError as exc:
            action_log.warning("cannot delete Job %s: %s", name, exc)
