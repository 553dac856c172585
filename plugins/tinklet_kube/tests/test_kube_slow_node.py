"""The test API server on a busy node: a pod deleted while its container is still being started
(its Job's deadline came first, as under load) has that container stopped too, so the deletion
ends after the grace period, as a real kubelet's does, rather than when the container exits."""

from __future__ import annotations

import uuid

import docker
from kube_helpers import Cluster, job_body, wait_until
from tinklet_kube_testing.behaviour import ServerBehaviour


def test_a_deadline_while_the_container_starts_stops_the_container(
    server_cluster: Cluster, behaviour: ServerBehaviour
) -> None:
    behaviour.start_delay = 2.0  # the Job's 1 s deadline comes while its container is being started
    batch, core = server_cluster.batch, server_cluster.core
    name = f"slow-{uuid.uuid4().hex[:8]}"
    created = batch.create_namespaced_job("default", job_body(name, "sleep", "60", activeDeadlineSeconds=1))
    selector = f"controller-uid={created.metadata.uid}"
    try:
        # start_delay 2 s + grace 1 s; a container left running would hold the pod for 60 s
        wait_until(
            lambda: not core.list_namespaced_pod("default", label_selector=selector).items,
            timeout=15,
            what="the pod of a Job past its deadline to go",
        )
        job = batch.read_namespaced_job(name, "default")
        reasons = {(c.type, c.reason) for c in job.status.conditions if c.status == "True"}
        assert ("Failed", "DeadlineExceeded") in reasons
        key, value = server_cluster.server.container_label
        docker_client = docker.APIClient(version="auto")
        try:
            left = docker_client.containers(all=True, filters={"label": f"{key}={value}"})
        finally:
            docker_client.close()
        assert [c for c in left if name in c["Labels"].get("tinklet.kube-pod", "")] == []
    finally:
        batch.delete_namespaced_job(name, "default", propagation_policy="Foreground")
