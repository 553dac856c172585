"""The kube runtime, driven through the official client against the test API server (pods run on
the local dockerd) and, when ``TINKLET_TEST_KUBECONFIG`` is set, a real cluster."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import docker
import pytest
from kube_helpers import Cluster, new_action, new_run, wait_until
from kubernetes.client.exceptions import ApiException
from tinklet_kube.manifests import JobOptions, job_manifest
from tinklet_kube.names import job_name, pull_secret_name
from tinklet_kube.runtime import KubeRuntime

from tinklet_core.errors import ActionInterrupted, RuntimeUnavailable
from tinklet_core.model import RegistryCredentials, State, Volume
from tinklet_core.runtime import Privilege, RuntimeSettings, WorkflowEnvironment


def assert_job_gone(cluster: Cluster, name: str) -> None:
    with pytest.raises(ApiException) as caught:
        cluster.batch.read_namespaced_job(name, cluster.namespace)
    assert caught.value.status == 404


def test_echo_streams_output_and_succeeds(cluster: Cluster, runtime: KubeRuntime) -> None:
    action = new_action(cluster.image, "sh", "-c", "echo hello; echo world >&2; echo pid=$$")
    run = new_run(action, cluster.settings())
    outcome = runtime.tinklet_execute_action(run.context)
    assert outcome.state is State.SUCCESS
    # stdout and stderr are two streams: their lines may interleave either way
    assert sorted(run.lines) == ["hello", "pid=1", "world"]  # pid 1: the pod has its own PID namespace
    assert cluster.jobs(action.workflow_id) == []


def test_env_values_keep_spaces_equals_and_dollars(cluster: Cluster, runtime: KubeRuntime) -> None:
    env = (("GREETING", "hello world"), ("PAIR", "a=b=c"), ("REF", "$(GREETING) $$ $HOME"))
    action = new_action(
        cluster.image, "sh", "-c", "echo \"$GREETING|$PAIR|$REF\"; echo '$(GREETING)'", env=env
    )
    run = new_run(action, cluster.settings())
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    # no $(VAR) expansion by the kubelet: what the workflow said is what the action sees
    assert run.lines == ["hello world|a=b=c|$(GREETING) $$ $HOME", "$(GREETING)"]


def test_long_output_arrives_whole_and_in_order(cluster: Cluster, runtime: KubeRuntime) -> None:
    action = new_action(cluster.image, "seq", "1", "100000")
    run = new_run(action, cluster.settings())
    assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    assert run.lines == [str(number) for number in range(1, 100001)]


def test_exit_code_fails_the_action(cluster: Cluster, runtime: KubeRuntime) -> None:
    action = new_action(cluster.image, "sh", "-c", "echo about to fail; exit 3")
    run = new_run(action, cluster.settings())
    outcome = runtime.tinklet_execute_action(run.context)
    assert (outcome.state, outcome.reason, outcome.exit_code) == (State.FAILED, "exit code 3", 3)
    assert run.lines == ["about to fail"]
    assert_job_gone(cluster, job_name(action.workflow_id, action.action_id))


def test_job_deadline_is_a_timeout_and_the_job_is_removed(cluster: Cluster, runtime: KubeRuntime) -> None:
    # no worker deadline: the Job's activeDeadlineSeconds alone ends it. 6 s, not less: the
    # deadline runs from the Job's start, and on a loaded machine (the suite in parallel) the
    # node takes seconds to start the container that prints "started".
    action = new_action(cluster.image, "sh", "-c", "echo started; sleep 60", timeout=6)
    run = new_run(action, cluster.settings())
    started = time.monotonic()
    outcome = runtime.tinklet_execute_action(run.context)
    elapsed = time.monotonic() - started
    assert outcome.state is State.TIMEOUT
    assert outcome.reason == "timed out after 6s"
    assert elapsed < 6 + 10, f"TIMEOUT came {elapsed:.1f}s after start"
    assert run.lines == ["started"]
    assert_job_gone(cluster, job_name(action.workflow_id, action.action_id))


def test_worker_deadline_is_a_timeout(cluster: Cluster, runtime: KubeRuntime) -> None:
    action = new_action(cluster.image, "sleep", "60")
    run = new_run(action, cluster.settings(), deadline=time.monotonic() + 2)
    started = time.monotonic()
    outcome = runtime.tinklet_execute_action(run.context)
    assert outcome.state is State.TIMEOUT
    assert time.monotonic() - started < 2 + 10
    assert cluster.jobs(action.workflow_id) == []


def test_cancel_deletes_the_job_and_interrupts(cluster: Cluster, runtime: KubeRuntime) -> None:
    action = new_action(cluster.image, "sh", "-c", "echo started; sleep 60")
    run = new_run(action, cluster.settings())
    errors: list[BaseException] = []

    def execute() -> None:
        try:
            runtime.tinklet_execute_action(run.context)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=execute)
    worker.start()
    wait_until(lambda: "started" in run.lines, what="the action to start")
    cancelled_at = time.monotonic()
    run.context.cancelled.set()
    worker.join(30)
    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 10
    assert len(errors) == 1 and isinstance(errors[0], ActionInterrupted)
    assert_job_gone(cluster, job_name(action.workflow_id, action.action_id))


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"pid_namespace": "host"}, "pid namespace 'host'"),
        ({"network_namespace": "host"}, "network namespace 'host'"),
        ({"volumes": (Volume("/dev", "/dev"),)}, "host path volume /dev:/dev"),
    ],
)
def test_host_fields_fail_without_allow_host(
    cluster: Cluster, runtime: KubeRuntime, fields: dict[str, object], named: str
) -> None:
    action = new_action(cluster.image, "true", **fields)
    outcome = runtime.tinklet_execute_action(new_run(action, cluster.settings()).context)
    assert outcome.state is State.FAILED
    assert named in outcome.reason
    assert "no safe Kubernetes meaning" in outcome.reason
    assert "--kube-allow-host" in outcome.reason
    assert cluster.jobs(action.workflow_id) == []


def test_named_volumes_are_refused_with_a_reason(cluster: Cluster, runtime: KubeRuntime) -> None:
    action = new_action(cluster.image, "true", volumes=(Volume("cache", "/cache"),))
    outcome = runtime.tinklet_execute_action(new_run(action, cluster.settings()).context)
    assert outcome.state is State.FAILED
    assert "named volume 'cache' is not supported" in outcome.reason


def test_allow_host_maps_host_pid_and_host_paths(server_cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "greeting").write_text("from the host\n")
    settings = server_cluster.settings(kube_allow_host=True)
    runtime = KubeRuntime(settings)
    try:
        action = new_action(
            server_cluster.image,
            "sh",
            "-c",
            "echo pid=$$; cat /host/greeting",
            pid_namespace="host",
            volumes=(Volume(str(tmp_path), "/host", read_only=True),),
        )
        run = new_run(action, settings)
        assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
    finally:
        runtime.close()
    assert run.lines[0] != "pid=1"  # the host's PID namespace
    assert run.lines[1] == "from the host"


def test_privilege_setting_reaches_the_container(server_cluster: Cluster) -> None:
    command = ("sh", "-c", "mount -t tmpfs none /tmp && echo mounted")
    for privilege, expected in ((Privilege.PRIVILEGED, State.SUCCESS), (Privilege.NONE, State.FAILED)):
        settings = RuntimeSettings(
            agent_id="agent-1", privilege=privilege, options=server_cluster.settings().options
        )
        runtime = KubeRuntime(settings)
        try:
            run = new_run(new_action(server_cluster.image, *command), settings)
            assert runtime.tinklet_execute_action(run.context).state is expected, privilege
        finally:
            runtime.close()


def test_unpullable_image_fails_quickly_with_the_reason(cluster: Cluster, runtime: KubeRuntime) -> None:
    action = new_action("127.0.0.1:1/tinklet/no-such-image:1", "true")
    started = time.monotonic()
    outcome = runtime.tinklet_execute_action(new_run(action, cluster.settings()).context)
    assert outcome.state is State.FAILED
    assert outcome.reason.startswith("image pull failed: ")
    assert "no-such-image" in outcome.reason
    assert time.monotonic() - started < 60
    assert cluster.jobs(action.workflow_id) == []


def test_a_job_left_by_a_crashed_worker_is_adopted(cluster: Cluster, runtime: KubeRuntime) -> None:
    action = new_action(cluster.image, "sh", "-c", "echo fresh run")
    name = job_name(action.workflow_id, action.action_id)
    crashed = new_action(
        cluster.image,
        "sh",
        "-c",
        "echo adopted; sleep 1; exit 4",
        workflow_id=action.workflow_id,
        action_id=action.action_id,
    )
    cluster.batch.create_namespaced_job(
        cluster.namespace, job_manifest(crashed, name, JobOptions(cluster.namespace))
    )
    run = new_run(action, cluster.settings())
    outcome = runtime.tinklet_execute_action(run.context)
    assert (outcome.state, outcome.exit_code) == (State.FAILED, 4)
    assert run.lines == ["adopted"]
    assert_job_gone(cluster, name)
    if cluster.server is not None:  # exactly one pod ever ran for that Job
        assert sum(pod.startswith(name) for pod in cluster.server.kubelet.started_pods) == 1


def test_pull_secret_lives_from_prepare_to_cleanup(cluster: Cluster, runtime: KubeRuntime) -> None:
    registry = "registry.example.test:5000"
    credentials = RegistryCredentials(registry, "robot", "s3cret pass")
    first = new_action(f"{registry}/tools/disk:1", "true")

    def lookup(image: str) -> RegistryCredentials | None:
        return credentials if image.startswith(registry) else None

    environment = WorkflowEnvironment(first.workflow_id, "agent-1", first, lookup)
    secret_name = pull_secret_name(first.workflow_id, "agent-1")
    runtime.tinklet_prepare_environment(environment)
    try:
        secret = cluster.core.read_namespaced_secret(secret_name, cluster.namespace)
        assert secret.type == "kubernetes.io/dockerconfigjson"
        document = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))
        entry = document["auths"][registry]
        assert (entry["username"], entry["password"]) == ("robot", "s3cret pass")
        assert base64.b64decode(entry["auth"]).decode() == "robot:s3cret pass"

        # a later action of the same workflow (public image) still names the secret
        action = new_action(cluster.image, "sleep", "2", workflow_id=first.workflow_id, name="second")
        run = new_run(action, cluster.settings(), credentials=lookup)
        seen: list[object] = []
        worker = threading.Thread(target=lambda: seen.append(runtime.tinklet_execute_action(run.context)))
        worker.start()
        job = wait_until(lambda: cluster.jobs(first.workflow_id), what="the Job")[0]
        worker.join(60)
        pull_secrets = [ref.name for ref in job.spec.template.spec.image_pull_secrets]
        assert pull_secrets == [secret_name]
        assert getattr(seen[0], "state", None) is State.SUCCESS
    finally:
        runtime.tinklet_cleanup_environment(environment)
    with pytest.raises(ApiException) as caught:
        cluster.core.read_namespaced_secret(secret_name, cluster.namespace)
    assert caught.value.status == 404


def test_pull_secret_grows_for_a_later_registry(cluster: Cluster, runtime: KubeRuntime) -> None:
    first = new_action("one.test/a:1", "true")
    credentials = {
        "one.test": RegistryCredentials("one.test", "u1", "p1"),
        "two.test": RegistryCredentials("two.test", "u2", "p2"),
    }

    def lookup(image: str) -> RegistryCredentials | None:
        return credentials.get(image.split("/", 1)[0])

    environment = WorkflowEnvironment(first.workflow_id, "agent-1", first, lookup)
    runtime.tinklet_prepare_environment(environment)
    try:
        # the second action's image is missing, so its Job fails to pull; its secret was updated first
        second = new_action("two.test/b:1", "true", workflow_id=first.workflow_id, name="second")
        outcome = runtime.tinklet_execute_action(
            new_run(second, cluster.settings(), credentials=lookup).context
        )
        assert outcome.state is State.FAILED and outcome.reason.startswith("image pull failed")
        secret = cluster.core.read_namespaced_secret(
            pull_secret_name(first.workflow_id, "agent-1"), cluster.namespace
        )
        document = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))
        assert set(document["auths"]) == {"one.test", "two.test"}
    finally:
        runtime.tinklet_cleanup_environment(environment)


def test_jobs_are_visible_while_running_and_none_are_left(server_cluster: Cluster) -> None:
    runtime = KubeRuntime(server_cluster.settings())
    action = new_action(server_cluster.image, "sh", "-c", "echo up; sleep 2", name="visible", timeout=60)
    run = new_run(action, server_cluster.settings())
    worker = threading.Thread(target=runtime.tinklet_execute_action, args=(run.context,))
    try:
        worker.start()
        jobs = wait_until(lambda: server_cluster.jobs(action.workflow_id), what="the Job")
        job = jobs[0]
        assert job.metadata.name == job_name(action.workflow_id, action.action_id)
        assert job.metadata.annotations["tinklet.action"] == "task/visible"
        assert job.metadata.labels["tinklet.action"] != "task/visible"  # '/' is not a label character
        assert job.spec.backoff_limit == 0 and job.spec.active_deadline_seconds == 60
        pod_spec = job.spec.template.spec
        assert pod_spec.restart_policy == "Never" and pod_spec.automount_service_account_token is False
        selector = f"controller-uid={job.metadata.uid}"
        wait_until(
            lambda: server_cluster.core.list_namespaced_pod("default", label_selector=selector).items,
            what="the pod",
        )
        worker.join(60)
    finally:
        runtime.close()
    assert server_cluster.jobs(action.workflow_id) == []
    assert server_cluster.core.list_namespaced_pod("default", label_selector=selector).items == []
    key, value = server_cluster.server.container_label
    docker_client = docker.APIClient(version="auto")
    try:
        leftovers = docker_client.containers(
            all=True, filters={"label": [f"{key}={value}", "tinklet.kube-pod"]}
        )
        assert [c for c in leftovers if job.metadata.name in c["Labels"]["tinklet.kube-pod"]] == []
    finally:
        docker_client.close()


def test_service_account_is_set_on_the_pod(server_cluster: Cluster) -> None:
    settings = server_cluster.settings(kube_service_account="provisioner")
    runtime = KubeRuntime(settings)
    action = new_action(server_cluster.image, "sleep", "1")
    worker = threading.Thread(
        target=runtime.tinklet_execute_action, args=(new_run(action, settings).context,)
    )
    try:
        worker.start()
        job = wait_until(lambda: server_cluster.jobs(action.workflow_id), what="the Job")[0]
        assert job.spec.template.spec.service_account_name == "provisioner"
        worker.join(60)
    finally:
        runtime.close()


def test_unreachable_api_is_runtime_unavailable(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    with pytest.raises(RuntimeUnavailable, match="unreachable"):
        KubeRuntime(RuntimeSettings(options={"kubeconfig": str(path)}))
    with pytest.raises(RuntimeUnavailable, match="does not exist"):
        KubeRuntime(RuntimeSettings(options={"kubeconfig": str(tmp_path / "missing")}))


def test_default_kubeconfig_is_the_home_one(
    server_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    with pytest.raises(RuntimeUnavailable, match="no Kubernetes configuration"):
        KubeRuntime(RuntimeSettings())
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(Path(server_cluster.kubeconfig).read_text())
    KubeRuntime(RuntimeSettings()).close()
    KubeRuntime(RuntimeSettings(options={"kubeconfig": "~/.kube/config"})).close()


def test_kubeconfig_may_list_several_files(server_cluster: Cluster, tmp_path: Path) -> None:
    listed = f"{tmp_path / 'absent'}:{server_cluster.kubeconfig}"
    KubeRuntime(RuntimeSettings(options={"kubeconfig": listed})).close()


def test_unknown_namespace_and_bad_token_are_runtime_unavailable(
    server_cluster: Cluster, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeUnavailable, match=r"'nowhere'.*404 NotFound"):
        KubeRuntime(server_cluster.settings(kube_namespace="nowhere"))
    config = json.loads(Path(server_cluster.kubeconfig).read_text())
    config["users"][0]["user"]["token"] = "wrong"
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    with pytest.raises(RuntimeUnavailable, match="401"):
        KubeRuntime(RuntimeSettings(options={"kubeconfig": str(path)}))
