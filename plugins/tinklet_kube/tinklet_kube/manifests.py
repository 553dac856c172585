"""An action as a batch/v1 Job manifest, and a workflow's pull Secret, as plain JSON-ready dicts.

Mapping (docker semantics kept where Kubernetes has an equivalent):

- ``action.command`` becomes the container's ``args`` (Docker's CMD: the image's ENTRYPOINT is
  kept, as the docker runtime does). ``$`` is escaped as ``$$`` in args and env values so the
  kubelet's ``$(VAR)`` expansion never rewrites them.
- ``action.env`` becomes ``env`` in order; ``action.timeout`` > 0 becomes
  ``activeDeadlineSeconds``; the Job never retries (``backoffLimit: 0``, ``restartPolicy:
  Never``) because tinklet's worker owns retries.
- Privilege: ``privileged`` sets ``securityContext.privileged``; ``all-caps`` adds every
  capability without it; ``none`` leaves the cluster's defaults.
- The pod gets no service account token (``automountServiceAccountToken: false``) and no
  service-link env vars; ``kube-service-account`` sets ``serviceAccountName``.
- Host fields (``pid``/``network`` namespace ``host``, host-path volumes) have no safe meaning
  for a pod the scheduler may place on any node next to other workloads: they fail the action
  unless ``kube-allow-host`` is set, which maps them to ``hostPID``, ``hostNetwork`` and
  ``hostPath`` volumes.
- The action's ``/tinkerbell`` directory (see :mod:`tinklet_core.action_failure`) is an
  ``emptyDir``, and the container's ``terminationMessagePath`` is
  ``/tinkerbell/failure-message``: the kubelet copies that file (up to 4 KiB) into the pod's
  status, where tinklet reads it. A pod has one termination message per container, so
  ``failure-reason`` leaves the pod through a second container: with
  ``JobOptions.failure_helper_image`` set, the pod gets a *native sidecar* (an init container
  with ``restartPolicy: Always``, Kubernetes >= 1.29) named :data:`HELPER_NAME` that mounts the
  same ``emptyDir`` read-only at :data:`HELPER_DIR` and only waits. The kubelet starts it before
  the action and sends it SIGTERM only once the action has ended; its TERM trap copies a regular
  (not symlinked) ``failure-reason``, at most 256 bytes, to its own termination message, where
  tinklet reads it (``initContainerStatuses``). The action starts only after the helper has
  started, so a helper image that cannot be pulled holds the action back (tinklet fails it after
  ``kube-pull-timeout``, naming the helper). Without a helper image only the message comes back.
- The proxy settings fill the proxy variables the action's ``env`` does not set.
- Named volumes are not supported: Tinkerbell uses them to share files between the actions of
  a workflow, and a pod's volumes (``emptyDir``) die with the pod. Use a host path (with
  ``kube-allow-host``) instead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tinklet_core.action_failure import CONTAINER_DIR, MAX_REASON_BYTES, MESSAGE_FILE, REASON_FILE
from tinklet_core.model import Action, RegistryCredentials
from tinklet_core.proxy import ProxySettings, with_proxy_defaults
from tinklet_core.runtime import Privilege, PullPolicy
from tinklet_kube.names import label_value

JSON = dict[str, Any]
CONTAINER_NAME = "action"
FAILURE_VOLUME = "tinkerbell"
# The native sidecar that carries failure-reason out of the pod (see the module's docstring).
HELPER_NAME = "failure-reason"
HELPER_DIR = "/tinklet-failure"
# Waits (``sleep & wait`` so the trap runs at once); on TERM copies the reason file, if it is a
# regular file and not a symlink, bounded, to the termination message, and exits 0.
HELPER_SCRIPT = (
    f"reason={HELPER_DIR}/{REASON_FILE}; "
    'trap \'if [ -f "$reason" ] && [ ! -L "$reason" ]; then '
    f'head -c {MAX_REASON_BYTES} "$reason" > /dev/termination-log; fi; exit 0\' TERM; '
    "while :; do sleep 3600 & wait $!; done"
)
MANAGED_BY = {"app.kubernetes.io/managed-by": "tinklet"}
# A short grace period: like the docker runtime's kill, and lets SIGTERM shutdowns finish fast.
TERMINATION_GRACE_SECONDS = 1
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_PULL_POLICIES = {
    PullPolicy.MISSING: "IfNotPresent",
    PullPolicy.ALWAYS: "Always",
    PullPolicy.NEVER: "Never",
}
HOST_FIELDS_HELP = (
    "no safe Kubernetes meaning (the pod runs on whichever node the scheduler picks, next to "
    "other workloads); set --kube-allow-host to map them to hostPID, hostNetwork and hostPath"
)


@dataclass(frozen=True)
class JobOptions:
    """The runtime settings that shape every Job."""

    namespace: str
    privilege: Privilege = Privilege.PRIVILEGED
    pull_policy: PullPolicy = PullPolicy.MISSING
    service_account: str | None = None
    allow_host: bool = False
    pull_secret: str | None = None
    proxy: ProxySettings = field(default_factory=ProxySettings)
    failure_helper_image: str | None = None  # the sidecar that reports failure-reason; None: none


def unsupported_reason(action: Action, allow_host: bool) -> str | None:
    """Why ``action`` cannot run as a Job (a user-facing line), or ``None`` when it can."""
    for kind, value in (("pid", action.pid_namespace), ("network", action.network_namespace)):
        if value not in ("", "host"):
            return f"{kind} namespace {value!r} is not supported by the kube runtime (only 'host')"
    named = [volume.source for volume in action.volumes if not volume.is_host_path]
    if named:
        return (
            f"named volume {named[0]!r} is not supported by the kube runtime: a Job's pod cannot "
            "share a volume with the workflow's other actions; use a host path with --kube-allow-host"
        )
    if allow_host:
        return None
    host = []
    if action.pid_namespace == "host":
        host.append("pid namespace 'host'")
    if action.network_namespace == "host":
        host.append("network namespace 'host'")
    host += [f"host path volume {volume.source}:{volume.target}" for volume in action.volumes]
    if host:
        return f"{', '.join(host)}: {HOST_FIELDS_HELP}"
    return None


def object_labels(action: Action) -> dict[str, str]:
    """The action's tinklet labels with values made valid for Kubernetes."""
    labels = {key: label_value(value) for key, value in action.labels().items()}
    return {**labels, **MANAGED_BY}


def object_annotations(action: Action) -> dict[str, str]:
    """The raw ids (labels may hold hashed values), and the action's name."""
    return {**action.labels(), "tinklet.action-name": action.name}


def escape_expansion(text: str) -> str:
    """Protect ``text`` from the kubelet's ``$(VAR)`` expansion: ``$$`` stands for ``$``."""
    return text.replace("$", "$$")


def job_manifest(action: Action, name: str, options: JobOptions) -> JSON:
    """The batch/v1 Job that runs ``action`` once, as a dict ready to send."""
    labels = object_labels(action)
    annotations = object_annotations(action)
    container: dict[str, object] = {
        "name": CONTAINER_NAME,
        "image": action.image,
        "imagePullPolicy": _PULL_POLICIES[options.pull_policy],
        "env": [
            {"name": key, "value": escape_expansion(value)}
            for key, value in with_proxy_defaults(action.env, options.proxy)
        ],
        "terminationMessagePath": f"{CONTAINER_DIR}/{MESSAGE_FILE}",
    }
    if action.command:
        container["args"] = [escape_expansion(arg) for arg in action.command]
    security = _security_context(options.privilege)
    if security:
        container["securityContext"] = security
    pod_spec: dict[str, object] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "containers": [container],
    }
    if options.service_account:
        pod_spec["serviceAccountName"] = options.service_account
    if options.pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": options.pull_secret}]
    if action.pid_namespace == "host":
        pod_spec["hostPID"] = True
    if action.network_namespace == "host":
        pod_spec["hostNetwork"] = True
    pod_spec["volumes"] = [
        *(
            {"name": f"host-{index}", "hostPath": {"path": volume.source}}
            for index, volume in enumerate(action.volumes)
        ),
        {"name": FAILURE_VOLUME, "emptyDir": {}},
    ]
    container["volumeMounts"] = [
        *(
            {"name": f"host-{index}", "mountPath": volume.target, "readOnly": volume.read_only}
            for index, volume in enumerate(action.volumes)
        ),
        {"name": FAILURE_VOLUME, "mountPath": CONTAINER_DIR},
    ]
    if options.failure_helper_image:
        pod_spec["initContainers"] = [failure_helper(options.failure_helper_image, options.pull_policy)]
    spec: dict[str, object] = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
    }
    if action.timeout > 0:
        spec["activeDeadlineSeconds"] = action.timeout
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": options.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def failure_helper(image: str, pull_policy: PullPolicy) -> JSON:
    """The native sidecar that reports the action's ``failure-reason`` as its own termination
    message (see the module's docstring): unprivileged, read-only, pulled like the action."""
    return {
        "name": HELPER_NAME,
        "image": image,
        "imagePullPolicy": _PULL_POLICIES[pull_policy],
        "restartPolicy": "Always",
        "command": ["sh", "-c", HELPER_SCRIPT],
        "volumeMounts": [{"name": FAILURE_VOLUME, "mountPath": HELPER_DIR, "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
    }


def has_failure_helper(pod_spec: JSON) -> bool:
    """True when ``pod_spec`` (a pod's, or a Job template's) runs the failure-reason helper as a
    native sidecar; ``False`` also when a server too old for sidecars dropped its
    ``restartPolicy``."""
    return any(
        init.get("name") == HELPER_NAME and init.get("restartPolicy") == "Always"
        for init in pod_spec.get("initContainers") or ()
    )


def _security_context(privilege: Privilege) -> dict[str, object]:
    if privilege is Privilege.PRIVILEGED:
        return {"privileged": True}
    if privilege is Privilege.ALL_CAPS:
        return {"privileged": False, "capabilities": {"add": ["ALL"]}}
    return {}


def docker_config_json(credentials: Iterable[RegistryCredentials]) -> str:
    """A ``.dockerconfigjson`` document holding ``credentials``, one entry per registry."""
    auths = {}
    for cred in credentials:
        key = DOCKER_HUB_KEY if cred.registry == "docker.io" else cred.registry
        token = base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode()
        auths[key] = {"username": cred.username, "password": cred.password, "auth": token}
    return json.dumps({"auths": auths}, sort_keys=True)


def pull_secret_manifest(
    name: str, namespace: str, workflow_id: str, agent_id: str, credentials: Iterable[RegistryCredentials]
) -> JSON:
    """The ``kubernetes.io/dockerconfigjson`` Secret that lets a workflow's pods pull images."""
    document = docker_config_json(credentials)
    raw = {"tinklet.workflow": workflow_id, "tinklet.agent": agent_id}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**{key: label_value(value) for key, value in raw.items()}, **MANAGED_BY},
            "annotations": raw,
        },
        "data": {".dockerconfigjson": base64.b64encode(document.encode()).decode()},
    }
