"""Helpers for the kube runtime's tests: clusters, actions, contexts."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinklet_core.model import Action, RegistryCredentials
from tinklet_core.runtime import ActionContext, Privilege, RuntimeSettings

TEST_IMAGE = "tinklet/busybox:latest"
REAL_CLUSTER_ENV = "TINKLET_TEST_KUBECONFIG"


@dataclass
class Cluster:
    """Where the tests run Jobs, and the official client to look at them."""

    kubeconfig: str
    namespace: str
    image: str
    server: Any
    batch: Any = None
    core: Any = None

    def settings(self, **options: object) -> RuntimeSettings:
        """Runtime settings for this cluster, with extra ``options``."""
        return RuntimeSettings(
            agent_id="agent-1",
            privilege=Privilege.PRIVILEGED,
            # a short pull window: the tests' unpullable images would otherwise wait out the default
            options={
                "kubeconfig": self.kubeconfig,
                "kube_namespace": self.namespace,
                "kube_pull_timeout": 3,
                # the failure-reason helper from the test image (the test server pulls nothing)
                "kube_failure_helper_image": self.image,
                **options,
            },
        )

    def jobs(self, workflow_id: str) -> list[Any]:
        """The Jobs tinklet made for ``workflow_id`` (as client models)."""
        selector = f"tinklet.workflow={workflow_id}"
        return list(self.batch.list_namespaced_job(self.namespace, label_selector=selector).items)


@dataclass
class Run:
    """An action context whose output is collected."""

    context: ActionContext
    lines: list[str] = field(default_factory=list)


def new_action(image: str, *command: str, **fields: Any) -> Action:
    """An action of a fresh workflow (unique ids), running ``command``."""
    workflow = fields.pop("workflow_id", f"wf-{uuid.uuid4().hex[:8]}")
    name = fields.pop("name", "step")
    return Action(
        workflow_id=workflow,
        task_id="task",
        action_id=fields.pop("action_id", f"task/{name}"),
        agent_id="agent-1",
        name=name,
        image=image,
        command=tuple(command),
        **fields,
    )


def new_run(
    action: Action,
    settings: RuntimeSettings,
    *,
    deadline: float | None = None,
    credentials: Callable[[str], RegistryCredentials | None] = lambda image: None,
) -> Run:
    """A context for ``action`` collecting its output lines."""
    lines: list[str] = []
    context = ActionContext(
        action=action,
        settings=settings,
        deadline=deadline,
        cancelled=threading.Event(),
        output=lines.append,
        registry_credentials=credentials,
        log=logging.getLogger("tinklet.test.kube"),
    )
    return Run(context, lines)


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (test helper; generous bound)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def job_body(
    name: str,
    *args: str,
    image: str = TEST_IMAGE,
    labels: dict[str, str] | None = None,
    container: dict[str, Any] | None = None,
    pod: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A batch/v1 Job manifest that runs ``args`` in one container named ``action``, never
    retried, with a 1 s grace period; ``container``, ``pod`` and ``spec`` add fields to the
    container, the pod spec and the Job spec."""
    action = {"name": "action", "image": image, "args": list(args), "imagePullPolicy": "IfNotPresent"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels if labels is not None else {"suite": "apiserver"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{**action, **(container or {})}],
                    **(pod or {}),
                }
            },
            **spec,
        },
    }
