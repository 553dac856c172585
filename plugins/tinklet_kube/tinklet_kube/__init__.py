"""kube runtime for tinklet: each action runs as a Kubernetes Job.

The entry-point module stays light: it names the runtime, its options and a
:class:`~tinklet_core.lazy_factory.LazyFactory` for :class:`tinklet_kube.runtime.KubeRuntime`
with its hooks. The runtime's modules and the kubernetes client are imported only when
``--runtime kube`` is chosen; the option defaults live in :mod:`tinklet_kube.defaults`.
"""

from __future__ import annotations

from typing import Any

from tinklet_core.hookspecs import hookimpl
from tinklet_core.lazy_factory import LazyFactory
from tinklet_core.runtime import RuntimeOption, RuntimeSpec
from tinklet_kube.defaults import DEFAULT_HELPER_IMAGE, DEFAULT_PULL_LIMIT, DEFAULT_SCHEDULE_LIMIT

KUBE_HOOKS = ("tinklet_cleanup_environment", "tinklet_execute_action", "tinklet_prepare_environment")

OPTIONS = (
    RuntimeOption(
        name="kubeconfig",
        help="kubeconfig file(s) of the cluster (default: KUBECONFIG, else the in-cluster config, "
        "else ~/.kube/config)",
        env_fallback="KUBECONFIG",
    ),
    RuntimeOption(
        name="kube-namespace",
        help="namespace the action Jobs run in (default: the kubeconfig context's, else the pod's own, "
        "else 'default')",
    ),
    RuntimeOption(name="kube-service-account", help="service account of the action pods (default: none)"),
    RuntimeOption(
        name="kube-allow-host",
        help="map actions' host pid/network namespaces and host-path volumes to hostPID, hostNetwork "
        "and hostPath (refused otherwise)",
        kind=bool,
        default=False,
    ),
    RuntimeOption(
        name="kube-schedule-timeout",
        help="seconds an action's pod may wait to be made and scheduled before the action fails, "
        "even without an action timeout",
        kind=float,
        default=DEFAULT_SCHEDULE_LIMIT,
    ),
    RuntimeOption(
        name="kube-pull-timeout",
        help="seconds an image pull may keep failing (the kubelet retries) before the action fails",
        kind=float,
        default=DEFAULT_PULL_LIMIT,
    ),
    RuntimeOption(
        name="kube-failure-helper-image",
        help="image with a POSIX shell for the native sidecar that reports an action's "
        "/tinkerbell/failure-reason (Kubernetes >= 1.29; pulled like the action's image); "
        "'none' turns it off and only failure-message is reported",
        default=DEFAULT_HELPER_IMAGE,
    ),
)


@hookimpl
def tinklet_runtimes() -> list[RuntimeSpec]:
    """The kube runtime."""
    return [
        RuntimeSpec(
            name="kube",
            factory=LazyFactory("tinklet_kube.runtime:KubeRuntime", hooks=KUBE_HOOKS),
            summary="run each action as a Kubernetes Job",
            aliases=("kubernetes",),
            options=OPTIONS,
        )
    ]


def __getattr__(name: str) -> Any:
    """``from tinklet_kube import KubeRuntime`` imports the runtime module only then."""
    if name == "KubeRuntime":
        from tinklet_kube.runtime import KubeRuntime

        return KubeRuntime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
