"""The kube runtime against the test API server switched to the harsher (documented) behaviour of
a real cluster: a controller that reacts at once, unordered watches, log streams a proxy cuts,
Roles that forbid verbs, admission webhooks, unschedulable pods, transient pull errors."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kube_helpers import TEST_IMAGE, Cluster, new_action, new_run
from tinklet_kube.runtime import KubeRuntime
from tinklet_kube_testing import KubeTestServer
from tinklet_kube_testing.behaviour import ServerBehaviour

from tinklet_core.errors import RuntimeUnavailable
from tinklet_core.model import State
from tinklet_core.runtime import RuntimeSettings, WorkflowEnvironment


@pytest.fixture
def kube(server_cluster: Cluster, behaviour: ServerBehaviour) -> Iterator[KubeRuntime]:
    """The runtime on the test server (opened after the test set its switches, if it needs that)."""
    opened = KubeRuntime(server_cluster.settings())
    try:
        yield opened
    finally:
        opened.close()


def test_hundred_fast_actions_deliver_every_line(server_cluster: Cluster, behaviour: ServerBehaviour) -> None:
    # the controller completes the Job at once; the kubelet's relist never sees these short
    # containers running (Pending, then Succeeded); the pods' watch runs behind the Jobs' watch.
    # Without the failure-reason helper: it is one more container to start and stop per pod
    # (about a second each here), which this test of the log's path would spend 100 times.
    kube = KubeRuntime(server_cluster.settings(kube_failure_helper_image="none"))
    behaviour.controller_delay = 0.0
    behaviour.status_sync = 1.0
    behaviour.watch_lag = {"pods": 0.5}
    actions = [new_action(TEST_IMAGE, "echo", f"line {index}") for index in range(100)]

    def run(index: int) -> tuple[State, list[str]]:
        action_run = new_run(actions[index], server_cluster.settings())
        return kube.tinklet_execute_action(action_run.context).state, action_run.lines

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(run, range(100)))
    finally:
        kube.close()
    assert [state for state, _lines in results] == [State.SUCCESS] * 100
    delivered = [lines for _state, lines in results]
    assert delivered == [[f"line {index}"] for index in range(100)]


def test_a_controller_that_waits_changes_nothing_the_user_sees(
    server_cluster: Cluster, behaviour: ServerBehaviour, kube: KubeRuntime
) -> None:
    behaviour.controller_delay = 1.0  # the Job shows the pod's end about 1 s later, as usual
    action = new_action(TEST_IMAGE, "sh", "-c", "echo one; echo two; exit 5")
    run = new_run(action, server_cluster.settings())
    outcome = kube.tinklet_execute_action(run.context)
    assert (outcome.state, outcome.reason, outcome.exit_code) == (State.FAILED, "exit code 5", 5)
    assert run.lines == ["one", "two"]
    assert server_cluster.jobs(action.workflow_id) == []


def test_a_log_stream_cut_mid_action_loses_and_doubles_nothing(
    server_cluster: Cluster, behaviour: ServerBehaviour, kube: KubeRuntime
) -> None:
    behaviour.log_cut = (0.2, 1.2)  # every followed stream ends at a random point, some mid-line
    script = 'for i in $(seq 1 40); do printf "line %s " $i; sleep 0.02; echo end; sleep 0.03; done'
    actions = [new_action(TEST_IMAGE, "sh", "-c", script) for _ in range(3)]

    def run(index: int) -> tuple[State, list[str]]:
        action_run = new_run(actions[index], server_cluster.settings())
        return kube.tinklet_execute_action(action_run.context).state, action_run.lines

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run, range(3)))
    expected = [f"line {number} end" for number in range(1, 41)]
    for state, lines in results:
        assert state is State.SUCCESS
        assert lines == expected


def test_output_after_a_cut_just_before_the_end_is_fetched(
    server_cluster: Cluster, behaviour: ServerBehaviour, kube: KubeRuntime
) -> None:
    # the stream is cut during the quiet second; the container prints the rest and exits while
    # tinklet waits to tell a cut from the end: what it never got must still arrive, once
    behaviour.log_cut = (0.3, 0.4)
    action = new_action(TEST_IMAGE, "sh", "-c", "echo start; sleep 1; seq 1 300")
    run = new_run(action, server_cluster.settings())
    assert kube.tinklet_execute_action(run.context).state is State.SUCCESS
    assert run.lines == ["start", *(str(number) for number in range(1, 301))]


def test_a_missing_namespace_stops_tinklet_at_start(server_cluster: Cluster) -> None:
    # a real API server lists nothing (200) in a namespace that does not exist
    assert server_cluster.batch.list_namespaced_job("nope").items == []
    with pytest.raises(RuntimeUnavailable, match=r"'nope'.*namespaces \"nope\" not found") as caught:
        KubeRuntime(server_cluster.settings(kube_namespace="nope"))
    assert "\n" not in str(caught.value)


def test_a_role_without_create_jobs_stops_tinklet_at_start(
    server_cluster: Cluster, behaviour: ServerBehaviour
) -> None:
    behaviour.forbidden = {("create", "jobs")}
    with pytest.raises(RuntimeUnavailable, match=r"403.*cannot create resource \"jobs\"") as caught:
        KubeRuntime(server_cluster.settings())
    assert "\n" not in str(caught.value)
    assert server_cluster.jobs("tinklet-start-check") == []


@pytest.mark.parametrize("verb", ["delete", "watch", "list"])
def test_a_role_without_what_actions_need_stops_tinklet_at_start(
    server_cluster: Cluster, behaviour: ServerBehaviour, verb: str
) -> None:
    behaviour.forbidden = {(verb, "jobs")}
    with pytest.raises(RuntimeUnavailable, match=f'cannot {verb} resource "jobs"'):
        KubeRuntime(server_cluster.settings())


def test_an_admission_refusal_stops_tinklet_at_start(
    server_cluster: Cluster, behaviour: ServerBehaviour
) -> None:
    behaviour.refuse_jobs = "privileged containers are not allowed in this namespace"
    with pytest.raises(RuntimeUnavailable, match="privileged containers are not allowed") as caught:
        KubeRuntime(server_cluster.settings())
    assert "\n" not in str(caught.value)
    assert "denied the request" in str(caught.value)


def test_an_unschedulable_pod_fails_after_the_scheduling_limit(
    server_cluster: Cluster, behaviour: ServerBehaviour, caplog: pytest.LogCaptureFixture
) -> None:
    behaviour.unschedulable = "0/1 nodes are available: 1 Insufficient cpu."
    settings = server_cluster.settings(kube_schedule_timeout=2)
    runtime = KubeRuntime(settings)
    try:
        action = new_action(TEST_IMAGE, "echo", "never runs", timeout=0)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="tinklet.test.kube"):
            outcome = runtime.tinklet_execute_action(new_run(action, settings).context)
        elapsed = time.monotonic() - started
    finally:
        runtime.close()
    assert outcome.state is State.FAILED
    assert "not scheduled" in outcome.reason and "2s" in outcome.reason
    assert "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu." in outcome.reason
    assert 2 <= elapsed < 2 + 10
    # the reason was logged as soon as Kubernetes gave it, before the limit ran out
    assert any("Insufficient cpu" in record.getMessage() for record in caplog.records)
    assert server_cluster.jobs(action.workflow_id) == []


def test_a_pod_refused_by_admission_fails_the_action_with_the_reason(
    server_cluster: Cluster, behaviour: ServerBehaviour, caplog: pytest.LogCaptureFixture
) -> None:
    # Pod Security admission refuses the Job's pod, not the Job: only the action can know
    behaviour.refuse_pods = 'violates PodSecurity "restricted:latest": privileged'
    settings = server_cluster.settings(kube_schedule_timeout=4)
    runtime = KubeRuntime(settings)
    try:
        action = new_action(TEST_IMAGE, "echo", "never runs")
        with caplog.at_level(logging.WARNING, logger="tinklet.test.kube"):
            outcome = runtime.tinklet_execute_action(new_run(action, settings).context)
    finally:
        runtime.close()
    assert outcome.state is State.FAILED
    assert outcome.reason.startswith("no pod was made for the Job within 4s: FailedCreate: ")
    assert 'violates PodSecurity "restricted:latest": privileged' in outcome.reason
    assert any("FailedCreate" in record.getMessage() for record in caplog.records)
    assert server_cluster.jobs(action.workflow_id) == []


def test_a_transient_pull_error_is_retried(server_cluster: Cluster, behaviour: ServerBehaviour) -> None:
    behaviour.pull_errors = 1  # about 2 s of ErrImagePull, then ImagePullBackOff, then it pulls
    settings = server_cluster.settings(kube_pull_timeout=20)
    runtime = KubeRuntime(settings)
    try:
        action = new_action(TEST_IMAGE, "echo", "pulled at last")
        run = new_run(action, settings)
        outcome = runtime.tinklet_execute_action(run.context)
    finally:
        runtime.close()
    assert outcome.state is State.SUCCESS
    assert run.lines == ["pulled at last"]


def test_a_lasting_pull_error_fails_after_the_pull_limit(server_cluster: Cluster) -> None:
    settings = server_cluster.settings(kube_pull_timeout=2)
    runtime = KubeRuntime(settings)
    try:
        action = new_action("127.0.0.1:1/tinklet/no-such-image:1", "true")
        started = time.monotonic()
        outcome = runtime.tinklet_execute_action(new_run(action, settings).context)
        elapsed = time.monotonic() - started
    finally:
        runtime.close()
    assert outcome.state is State.FAILED
    assert outcome.reason.startswith("image pull failed") and "no-such-image" in outcome.reason
    assert 2 <= elapsed < 2 + 10


def test_cleanup_deletes_only_what_was_made(
    server_cluster: Cluster, behaviour: ServerBehaviour, kube: KubeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    # a Role without any Secret access: a workflow that needs no credentials must not touch Secrets
    behaviour.forbidden = {(verb, "secrets") for verb in ("get", "list", "create", "update", "delete")}
    action = new_action(TEST_IMAGE, "echo", "no secrets here")
    environment = WorkflowEnvironment(action.workflow_id, "agent-1", action, lambda image: None)
    with caplog.at_level(logging.WARNING):
        kube.tinklet_prepare_environment(environment)
        run = new_run(action, server_cluster.settings())
        assert kube.tinklet_execute_action(run.context).state is State.SUCCESS
        kube.tinklet_cleanup_environment(environment)
    assert run.lines == ["no secrets here"]
    assert [record.getMessage() for record in caplog.records] == []


def test_pods_are_found_by_the_current_labels(
    server_cluster: Cluster, behaviour: ServerBehaviour, kube: KubeRuntime
) -> None:
    behaviour.legacy_labels = False  # a cluster that only sets batch.kubernetes.io/controller-uid
    action = new_action(TEST_IMAGE, "sh", "-c", "sleep 0.5; echo found")
    run = new_run(action, server_cluster.settings())
    outcome = kube.tinklet_execute_action(run.context)
    assert outcome.state is State.SUCCESS
    assert run.lines == ["found"]


def test_the_namespace_defaults_to_the_kubeconfig_contexts() -> None:
    with KubeTestServer(namespaces=("default", "tinklet-ctx"), context_namespace="tinklet-ctx") as server:
        options = {"kubeconfig": str(server.kubeconfig), "kube_failure_helper_image": TEST_IMAGE}
        runtime = KubeRuntime(RuntimeSettings(options=options))
        try:
            run = new_run(new_action(TEST_IMAGE, "echo", "in the context's namespace"), RuntimeSettings())
            assert runtime.tinklet_execute_action(run.context).state is State.SUCCESS
            started = server.kubelet.started_pods
        finally:
            runtime.close()
        assert run.lines == ["in the context's namespace"]
        assert len(started) == 1
        assert server.store.list("pods", "default")[0] == []
    with (
        KubeTestServer(context_namespace="gone") as server,
        pytest.raises(RuntimeUnavailable, match="'gone'"),
    ):
        KubeRuntime(RuntimeSettings(options={"kubeconfig": str(server.kubeconfig)}))


def test_an_unreachable_api_is_one_line_without_retry_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
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
    with caplog.at_level(logging.DEBUG, logger="urllib3"), pytest.raises(RuntimeUnavailable) as caught:
        KubeRuntime(RuntimeSettings(options={"kubeconfig": str(path)}))
    assert "unreachable" in str(caught.value) and "\n" not in str(caught.value)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
