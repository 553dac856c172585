"""Switches that make the test API server behave like the harsher corners of a real cluster.

Every switch defaults to what an ordinary, healthy cluster does. Tests set them on
``KubeTestServer.behaviour`` (and put them back with :meth:`ServerBehaviour.reset`) to check the
runtime against documented API server behaviour that a kind test double would hide:

- ``controller_delay``: seconds the Job controller waits before a pod's end shows on its Job
  (a real controller batches pod changes for about 1 s; ``0`` reacts at once);
- ``watch_lag``: seconds by which watch events of a resource (``"pods"``, ``"jobs"``) are held
  back (each goes out that long after its change); watches on different resources are not
  ordered with respect to each other;
- ``status_sync``: seconds after its start a container is looked at and reported ``Running``
  if it still runs (a real kubelet relists containers about once a second, so a short action
  goes from ``Pending`` straight to ``Succeeded``); ``0`` reports it at once;
- ``log_cut``: ``(low, high)``: a followed pod log ends cleanly after a random time in that range,
  as a proxy's idle timeout ends it while the container still runs;
- ``forbidden``: ``(verb, resource)`` pairs (``("create", "jobs")``) answered 403 Forbidden, as
  under a Role without that rule;
- ``refuse_jobs``: a validating admission webhook's message refusing every Job (also on
  server-side dry run);
- ``refuse_pods``: an admission refusal of every pod a Job makes: the Job gets no pod, only a
  ``FailedCreate`` warning Event (as under Pod Security admission);
- ``unschedulable``: the scheduler's message for every new pod, which then stays ``Pending``
  with ``PodScheduled=False``, reason ``Unschedulable``;
- ``pull_errors``: how many transient ``ErrImagePull``/``ImagePullBackOff`` rounds a pod goes
  through before its image pull succeeds;
- ``start_delay``: seconds the node's container engine takes to start a container (a busy
  node); a pod deleted meanwhile (its Job's deadline) still has that container stopped;
- ``legacy_labels``: whether pods also carry the pre-1.27 ``controller-uid``/``job-name`` labels;
- ``unavailable``: ``(status, until)``: every request is answered with ``status`` (503, 429) and
  a ``Retry-After: retry_after`` header until ``time.monotonic()`` passes ``until``, as an API
  server failing over behind a load balancer, or shedding load, answers (set it with
  :meth:`~tinklet_kube_testing.apiserver.KubeTestServer.answer_errors`, which also cuts the open
  streams);
- ``no_sidecars``: behave like a server before Kubernetes 1.29 (or with the SidecarContainers
  feature gate off): ``restartPolicy`` of init containers is an unknown field and silently
  dropped from every Job (also on server-side dry run), so a "sidecar" becomes a plain init
  container that must end before the pod's containers start.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class ServerBehaviour:
    """The test server's switches (see the module's docstring); read on every request."""

    controller_delay: float = 0.0
    watch_lag: dict[str, float] = field(default_factory=dict)
    status_sync: float = 0.0
    log_cut: tuple[float, float] | None = None
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    refuse_jobs: str | None = None
    refuse_pods: str | None = None
    unschedulable: str | None = None
    pull_errors: int = 0
    start_delay: float = 0.0
    legacy_labels: bool = True
    no_sidecars: bool = False
    unavailable: tuple[int, float] | None = None
    retry_after: int = 1

    def reset(self) -> None:
        """Back to an ordinary cluster."""
        for item in fields(self):
            setattr(self, item.name, getattr(ServerBehaviour(), item.name))
