"""The test API server speaks the Kubernetes API well enough for the official client, and runs its
pods for real on dockerd."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from kube_helpers import TEST_IMAGE, Cluster, job_body, wait_until
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.kube_config import new_client_from_config
from tinklet_kube_testing import KubeTestServer


def unique(prefix: str = "job") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api_error(call: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    return caught.value.status, json.loads(caught.value.body or "{}")


def pods_of(cluster: Cluster, job: Any) -> list[Any]:
    selector = f"controller-uid={job.metadata.uid}"
    return list(cluster.core.list_namespaced_pod("default", label_selector=selector).items)


def condition(job: Any) -> tuple[str, str] | None:
    for found in (job.status and job.status.conditions) or ():
        if found.type in ("Complete", "Failed") and found.status == "True":
            return found.type, found.reason
    return None


def finished(cluster: Cluster, name: str) -> Any:
    def check() -> Any:
        job = cluster.batch.read_namespaced_job(name, "default")
        return job if condition(job) else None

    return wait_until(check, what=f"Job {name} to finish")


def delete_job(cluster: Cluster, name: str) -> None:
    cluster.batch.delete_namespaced_job(name, "default", propagation_policy="Foreground")
    wait_until(
        lambda: not cluster.batch.list_namespaced_job("default", field_selector=f"metadata.name={name}").items
    )


@pytest.fixture
def jobs(server_cluster: Cluster) -> Iterator[list[str]]:
    """Names of Jobs a test made; deleted (foreground) afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        with contextlib.suppress(ApiException):
            delete_job(server_cluster, name)


def test_status_errors_have_the_real_codes(server_cluster: Cluster, jobs: list[str]) -> None:
    batch = server_cluster.batch
    code, status = api_error(batch.read_namespaced_job, "missing", "default")
    assert (code, status["kind"], status["reason"]) == (404, "Status", "NotFound")
    name = unique()
    jobs.append(name)
    batch.create_namespaced_job("default", job_body(name, "true"))
    code, status = api_error(batch.create_namespaced_job, "default", job_body(name, "true"))
    assert (code, status["reason"]) == (409, "AlreadyExists")
    code, status = api_error(batch.create_namespaced_job, "default", job_body("Bad_Name", "true"))
    assert (code, status["reason"]) == (422, "Invalid")
    assert "metadata.name" in status["message"]
    too_long = job_body("x" * 64, "true")
    assert api_error(batch.create_namespaced_job, "default", too_long)[0] == 422
    bad_label = job_body(unique(), "true")
    bad_label["metadata"]["labels"]["tinklet.action"] = "task/hello"
    code, status = api_error(batch.create_namespaced_job, "default", bad_label)
    assert code == 422 and "metadata.labels" in status["message"]
    assert batch.list_namespaced_job("nowhere").items == []  # a list says 200, as a real server does
    assert api_error(batch.create_namespaced_job, "nowhere", job_body(unique(), "true"))[0] == 404


def test_a_wrong_token_is_unauthorized(test_server: KubeTestServer) -> None:
    configuration = client.Configuration()
    configuration.host = test_server.url
    configuration.api_key = {"authorization": "Bearer wrong"}
    with client.ApiClient(configuration) as api_client:
        code, status = api_error(client.BatchV1Api(api_client).list_namespaced_job, "default")
    assert (code, status["reason"]) == (401, "Unauthorized")


def test_pod_lifecycle_exit_code_and_logs(server_cluster: Cluster, jobs: list[str]) -> None:
    name = unique()
    jobs.append(name)
    created = server_cluster.batch.create_namespaced_job(
        "default", job_body(name, "sh", "-c", "echo hi; exit 2", image=TEST_IMAGE)
    )
    job = finished(server_cluster, name)
    assert condition(job) == ("Failed", "BackoffLimitExceeded")
    (pod,) = pods_of(server_cluster, created)
    assert pod.metadata.name.startswith(f"{name}-")
    assert pod.metadata.labels["job-name"] == name
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (2, "Error")
    assert server_cluster.core.read_namespaced_pod_log(pod.metadata.name, "default") == "hi\n"


def test_watch_resumes_from_a_resource_version(server_cluster: Cluster, jobs: list[str]) -> None:
    version = server_cluster.batch.list_namespaced_job("default").metadata.resource_version
    name = unique()
    jobs.append(name)
    server_cluster.batch.create_namespaced_job("default", job_body(name, "true"))
    events = []
    watcher = watch.Watch()
    for event in watcher.stream(
        server_cluster.batch.list_namespaced_job,
        "default",
        field_selector=f"metadata.name={name}",
        resource_version=version,
        timeout_seconds=30,
    ):
        events.append(event["type"])
        if condition(event["object"]):
            watcher.stop()
    assert events[0] == "ADDED" and events[-1] == "MODIFIED"


def test_a_too_old_resource_version_is_gone() -> None:
    with KubeTestServer(history=2) as server:
        api_client = new_client_from_config(config_file=str(server.kubeconfig), persist_config=False)
        core: Any = client.CoreV1Api(api_client)  # raw dicts and raw responses below
        data = {"k": base64.b64encode(b"v").decode()}
        core.create_namespaced_secret("default", {"metadata": {"name": "first"}, "data": data})
        version = core.list_namespaced_secret("default").metadata.resource_version
        for index in range(4):
            core.create_namespaced_secret("default", {"metadata": {"name": f"s{index}"}, "data": data})
        response = core.list_namespaced_secret(
            "default", watch=True, resource_version=version, timeout_seconds=5, _preload_content=False
        )
        (line,) = [line for line in response.read().splitlines() if line]
        event = json.loads(line)
        assert (event["type"], event["object"]["code"], event["object"]["reason"]) == (
            "ERROR",
            410,
            "Expired",
        )
        api_client.close()


def test_followed_log_streams_while_the_pod_runs(server_cluster: Cluster, jobs: list[str]) -> None:
    name = unique()
    jobs.append(name)
    created = server_cluster.batch.create_namespaced_job(
        "default", job_body(name, "sh", "-c", "echo first; sleep 2; echo second")
    )

    def running_pod() -> Any:
        pods = pods_of(server_cluster, created)
        return pods[0] if pods and pods[0].status.phase == "Running" else None

    pod = wait_until(running_pod, what="the pod to run")
    response = server_cluster.core.read_namespaced_pod_log(
        pod.metadata.name, "default", follow=True, _preload_content=False
    )
    first = response.read1(1024)
    assert first == b"first\n"
    assert pods_of(server_cluster, created)[0].status.phase == "Running"  # the line came while it ran
    rest = b"".join(iter(lambda: response.read1(1024), b""))
    assert rest == b"second\n"


def test_active_deadline_kills_the_pod(server_cluster: Cluster, jobs: list[str]) -> None:
    name = unique()
    jobs.append(name)
    created = server_cluster.batch.create_namespaced_job(
        "default", job_body(name, "sleep", "60", activeDeadlineSeconds=1)
    )
    job = finished(server_cluster, name)
    assert condition(job) == ("Failed", "DeadlineExceeded")
    assert pods_of(server_cluster, created) == []


def test_missing_image_waits_with_pull_errors(server_cluster: Cluster, jobs: list[str]) -> None:
    name = unique()
    jobs.append(name)
    created = server_cluster.batch.create_namespaced_job(
        "default", job_body(name, "true", image="nowhere/none:1")
    )

    def waiting_reason() -> str | None:
        pods = pods_of(server_cluster, created)
        statuses = pods[0].status.container_statuses if pods else None
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.reason if waiting and waiting.reason == "ImagePullBackOff" else None

    assert wait_until(waiting_reason, what="ImagePullBackOff") == "ImagePullBackOff"


def test_deletion_policies(server_cluster: Cluster) -> None:
    batch, core = server_cluster.batch, server_cluster.core
    name = unique()
    created = batch.create_namespaced_job("default", job_body(name, "sleep", "60"))
    wait_until(lambda: pods_of(server_cluster, created), what="the pod")
    batch.delete_namespaced_job(name, "default", propagation_policy="Foreground")
    marked = batch.read_namespaced_job(name, "default")
    assert marked.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in marked.metadata.finalizers
    wait_until(lambda: not batch.list_namespaced_job("default", field_selector=f"metadata.name={name}").items)
    assert pods_of(server_cluster, created) == []
    key, value = server_cluster.server.container_label
    docker_client = docker.APIClient(version="auto")
    try:
        left = docker_client.containers(all=True, filters={"label": f"{key}={value}"})
        assert [c for c in left if name in c["Labels"].get("tinklet.kube-pod", "")] == []
    finally:
        docker_client.close()

    orphaned_name = unique()
    orphaned_job = batch.create_namespaced_job("default", job_body(orphaned_name, "sleep", "60"))
    (pod,) = wait_until(lambda: pods_of(server_cluster, orphaned_job), what="the pod")
    batch.delete_namespaced_job(orphaned_name, "default")  # batch/v1 default: orphan the pods
    kept = core.read_namespaced_pod(pod.metadata.name, "default")
    assert kept.metadata.owner_references is None
    core.delete_namespaced_pod(pod.metadata.name, "default")
    wait_until(lambda: not pods_of(server_cluster, orphaned_job), what="the pod to go")


def test_secrets_are_validated_without_echoing_them(server_cluster: Cluster) -> None:
    core = server_cluster.core
    name = unique("secret")
    document = base64.b64encode(b'{"auths": {}}').decode()
    body = {
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": document},
    }
    core.create_namespaced_secret("default", body)
    assert core.read_namespaced_secret(name, "default").type == "kubernetes.io/dockerconfigjson"
    core.replace_namespaced_secret(name, "default", body)
    core.delete_namespaced_secret(name, "default")
    assert api_error(core.read_namespaced_secret, name, "default")[0] == 404
    broken = dict(body, data={".dockerconfigjson": base64.b64encode(b"hunter2 not json").decode()})
    code, status = api_error(core.create_namespaced_secret, "default", broken)
    assert code == 422 and "hunter2" not in status["message"]


def test_a_dry_run_create_checks_everything_and_makes_nothing(server_cluster: Cluster) -> None:
    batch = server_cluster.batch
    name = unique()
    made = batch.create_namespaced_job("default", job_body(name, "true"), dry_run="All")
    assert made.metadata.name == name
    assert batch.list_namespaced_job("default", field_selector=f"metadata.name={name}").items == []
    code, status = api_error(batch.create_namespaced_job, "nope", job_body(name, "true"), dry_run="All")
    assert (code, status["message"]) == (404, 'namespaces "nope" not found')
    assert (
        api_error(batch.create_namespaced_job, "default", job_body("Bad_Name", "true"), dry_run="All")[0]
        == 422
    )
    server_cluster.server.behaviour.forbidden = {("create", "jobs")}
    try:
        code, status = api_error(
            batch.create_namespaced_job, "default", job_body(name, "true"), dry_run="All"
        )
    finally:
        server_cluster.server.behaviour.reset()
    assert (code, status["reason"]) == (403, "Forbidden")
    assert 'cannot create resource "jobs" in API group "batch"' in status["message"]
