"""failure-reason on Kubernetes: the native sidecar that reports it, how long tinklet waits for
it, what happens when its image is missing, and the fallback on a server without sidecars."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kube_helpers import TEST_IMAGE, Cluster, job_body, new_action, new_run, wait_until
from kubernetes.client.exceptions import ApiException
from tinklet_kube.manifests import HELPER_DIR, HELPER_NAME, JobOptions, job_manifest
from tinklet_kube.outcome import JobView, Limits
from tinklet_kube.runtime import KubeRuntime, helper_image
from tinklet_kube.watch import WatchEvent
from tinklet_kube_testing.behaviour import ServerBehaviour

from tinklet_core.model import State
from tinklet_core.runtime import PullPolicy
from tinklet_core.worker import failure_message

WRITE_BOTH = (
    "printf 'DiskNotFound\\n' > /tinkerbell/failure-reason; "
    "printf '/dev/sdz does not exist\\n' > /tinkerbell/failure-message; exit 1"
)

# The manifest ---------------------------------------------------------------------------------


def test_the_helper_is_a_read_only_native_sidecar_pulled_like_the_action() -> None:
    options = JobOptions("ns", pull_policy=PullPolicy.NEVER, pull_secret="s", failure_helper_image="hb:1")
    pod = job_manifest(new_action("img"), "n", options)["spec"]["template"]["spec"]
    (helper,) = pod["initContainers"]
    assert (helper["name"], helper["image"], helper["restartPolicy"]) == (HELPER_NAME, "hb:1", "Always")
    assert helper["imagePullPolicy"] == pod["containers"][0]["imagePullPolicy"] == "Never"
    assert pod["imagePullSecrets"] == [{"name": "s"}]  # pod-wide: the helper's pull uses it too
    assert helper["volumeMounts"] == [{"name": "tinkerbell", "mountPath": HELPER_DIR, "readOnly": True}]
    assert helper["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
    assert "env" not in helper  # the action's env (and secrets in it) stays with the action
    plain = job_manifest(new_action("img"), "n", JobOptions("ns"))["spec"]["template"]["spec"]
    assert "initContainers" not in plain


@pytest.mark.parametrize(
    ("value", "image"),
    [
        (None, "busybox:1.36"),
        ("", None),
        ("none", None),
        (" None ", None),
        ("reg.lan/busybox:1", "reg.lan/busybox:1"),
    ],
)
def test_the_helper_image_option(value: str | None, image: str | None) -> None:
    assert helper_image(value) == image


# Waiting for the helper's report ------------------------------------------------------------


def _pod(action: dict[str, Any], helper: dict[str, Any] | None, phase: str = "Failed") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [{"name": "action", "state": action}]}
    if helper is not None:
        status["initContainerStatuses"] = [{"name": HELPER_NAME, "state": helper}]
    spec = {"initContainers": [{"name": HELPER_NAME, "restartPolicy": "Always"}], "containers": [{}]}
    return {"metadata": {"name": "job-abcde", "creationTimestamp": "t"}, "spec": spec, "status": status}


def _view(*pods: dict[str, Any], now: float = 0.0, job: dict[str, Any] | None = None) -> JobView:
    view = JobView(limits=Limits(reason=5.0))
    view.apply_job(WatchEvent("SYNC", (job or {"metadata": {"name": "job"}},)))
    view.apply_pod(WatchEvent("SYNC", pods), now)
    return view


FAILED_1 = {"terminated": {"exitCode": 1, "reason": "Error", "message": "/dev/sdz does not exist\n"}}
RUNNING: dict[str, Any] = {"running": {}}


def test_a_failed_action_waits_for_the_helper_and_carries_its_reason() -> None:
    failed_job = {
        "metadata": {"name": "job"},
        "status": {"conditions": [{"type": "Failed", "status": "True"}]},
    }
    view = _view(_pod(FAILED_1, RUNNING), now=100.0, job=failed_job)
    assert view.outcome(100.0) is None and view.outcome(104.9) is None  # the Job's end decides nothing
    reported = {"terminated": {"exitCode": 0, "message": "DiskNotFound\n"}}
    view.apply_pod(WatchEvent("MODIFIED", (_pod(FAILED_1, reported),)), 101.0)
    outcome = view.outcome(101.0)
    assert outcome is not None and outcome.state is State.FAILED
    assert (outcome.action_reason, outcome.action_message) == ("DiskNotFound", "/dev/sdz does not exist")
    assert failure_message(outcome, []) == "DiskNotFound: /dev/sdz does not exist; exit code 1"


def test_the_wait_for_the_helper_is_bounded() -> None:
    view = _view(_pod(FAILED_1, RUNNING), now=100.0)
    assert view.outcome(104.9) is None
    outcome = view.outcome(105.0)  # the helper never reported: the failure without the reason
    assert outcome is not None and (outcome.state, outcome.action_reason) == (State.FAILED, "")
    assert outcome.action_message == "/dev/sdz does not exist"


def test_success_and_a_gone_pod_do_not_wait_for_the_helper() -> None:
    done = _view(_pod({"terminated": {"exitCode": 0, "reason": "Completed"}}, RUNNING, "Succeeded"))
    assert done.outcome(0.0) is not None and done.outcome(0.0).state is State.SUCCESS  # type: ignore[union-attr]
    view = _view(_pod(FAILED_1, RUNNING), now=100.0)
    view.apply_pod(WatchEvent("DELETED", (_pod(FAILED_1, RUNNING),)), 100.5)
    assert view.outcome(100.5) is not None


def test_a_deadline_waits_for_the_killed_pods_files_bounded() -> None:
    deadline = {
        "metadata": {"name": "job"},
        "spec": {"activeDeadlineSeconds": 2},
        "status": {"conditions": [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}]},
    }
    view = _view(_pod(RUNNING, RUNNING, "Running"), now=10.0, job=deadline)
    assert view.outcome(10.0) is None and not view.files_settled()  # the kill is on its way
    killed = {"terminated": {"exitCode": 137, "reason": "Error", "message": "waiting for /dev/sda\n"}}
    view.apply_pod(WatchEvent("MODIFIED", (_pod(killed, RUNNING),)), 11.0)
    assert view.outcome(11.0) is None  # the helper has not reported yet
    reported = {"terminated": {"exitCode": 0, "message": "DiskBusy"}}
    view.apply_pod(WatchEvent("MODIFIED", (_pod(killed, reported),)), 11.5)
    outcome = view.outcome(11.5)
    assert outcome is not None and (outcome.state, outcome.reason) == (State.TIMEOUT, "timed out after 2s")
    assert (outcome.action_reason, outcome.action_message) == ("DiskBusy", "waiting for /dev/sda")
    stuck = _view(_pod(RUNNING, RUNNING, "Running"), now=10.0, job=deadline)
    assert stuck.outcome(10.0) is None and stuck.outcome(14.9) is None
    late = stuck.outcome(15.0)  # the pod's end never showed: TIMEOUT all the same
    assert late is not None and (late.state, late.action_message) == (State.TIMEOUT, "")


def test_a_helper_image_that_cannot_be_pulled_fails_the_action_naming_the_helper() -> None:
    waiting_action = {"waiting": {"reason": "PodInitializing"}}
    never = {"waiting": {"reason": "ErrImageNeverPull", "message": 'image "hb:1" is not present'}}
    outcome = _view(_pod(waiting_action, never, "Pending")).outcome(0.0)
    assert outcome is not None and outcome.state is State.FAILED
    assert outcome.reason == (
        "image pull failed: the failure-reason helper (--kube-failure-helper-image; 'none' runs "
        'actions without it): image "hb:1" is not present'
    )
    view = JobView(limits=Limits(pull=10.0))
    view.apply_job(WatchEvent("SYNC", ({"metadata": {"name": "job"}},)))
    backoff = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}}
    view.apply_pod(WatchEvent("SYNC", (_pod(waiting_action, backoff, "Pending"),)), 50.0)
    assert view.outcome(59.0) is None
    assert "the failure-reason helper" in (view.trouble(59.0) or "")
    late = view.outcome(60.0)
    assert late is not None and "--kube-failure-helper-image" in late.reason


def test_a_kubelet_without_sidecars_holding_the_action_back_fails_it_after_the_pull_limit() -> None:
    view = JobView(limits=Limits(pull=10.0))
    view.apply_job(WatchEvent("SYNC", ({"metadata": {"name": "job"}},)))
    held = _pod({"waiting": {"reason": "PodInitializing"}}, RUNNING, "Pending")
    view.apply_pod(WatchEvent("SYNC", (held,)), 20.0)
    assert view.outcome(29.9) is None
    outcome = view.outcome(30.0)
    assert outcome is not None and outcome.state is State.FAILED
    assert "plain init container" in outcome.reason and "--kube-failure-helper-image none" in outcome.reason
    # an action that starts, as with a sidecar-aware kubelet, is not held
    view.apply_pod(WatchEvent("MODIFIED", (_pod(RUNNING, RUNNING, "Running"),)), 25.0)
    assert view.held_since is None and view.outcome(100.0) is None


# On the test API server -----------------------------------------------------------------------


def _open(cluster: Cluster, **options: object) -> KubeRuntime:
    return KubeRuntime(cluster.settings(**options))


def test_a_symlinked_reason_is_not_followed(server_cluster: Cluster) -> None:
    runtime = _open(server_cluster)
    try:
        script = (
            "ln -s /etc/passwd /tinkerbell/failure-reason; "
            "printf 'look elsewhere\\n' > /tinkerbell/failure-message; exit 1"
        )
        run = new_run(new_action(TEST_IMAGE, "sh", "-c", script), server_cluster.settings())
        outcome = runtime.tinklet_execute_action(run.context)
    finally:
        runtime.close()
    assert (outcome.state, outcome.action_reason, outcome.action_message) == (
        State.FAILED,
        "",
        "look elsewhere",
    )


def test_a_missing_helper_image_fails_the_action_before_it_runs(server_cluster: Cluster) -> None:
    missing = f"tinklet/no-such-helper:{uuid.uuid4().hex[:8]}"
    settings = server_cluster.settings(kube_failure_helper_image=missing)
    runtime = KubeRuntime(dataclasses.replace(settings, pull_policy=PullPolicy.NEVER))
    try:
        run = new_run(new_action(TEST_IMAGE, "sh", "-c", "echo ran; exit 0"), server_cluster.settings())
        outcome = runtime.tinklet_execute_action(run.context)
    finally:
        runtime.close()
    assert outcome.state is State.FAILED
    assert "the failure-reason helper (--kube-failure-helper-image" in outcome.reason
    assert missing in outcome.reason
    assert run.lines == [], "the action must not start before its sidecar"


def test_a_server_without_sidecars_runs_actions_without_the_helper(
    server_cluster: Cluster, behaviour: ServerBehaviour, caplog: pytest.LogCaptureFixture
) -> None:
    behaviour.no_sidecars = True
    with caplog.at_level(logging.WARNING, logger="tinklet.kube"):
        runtime = _open(server_cluster)
    warnings = [record.getMessage() for record in caplog.records if record.name == "tinklet.kube"]
    assert len(warnings) == 1 and "failure-reason helper" in warnings[0] and "1.29" in warnings[0]
    pods_seen: list[Any] = []
    try:
        action = new_action(TEST_IMAGE, "sh", "-c", f"echo started; {WRITE_BOTH}")
        # bounded: a helper turned into a plain init container would hold the action back for good
        run = new_run(action, server_cluster.settings(), deadline=time.monotonic() + 30)
        started = len(server_cluster.server.kubelet.started_pods)
        outcome = runtime.tinklet_execute_action(run.context)
        pods_seen = server_cluster.server.kubelet.started_pods[started:]
    finally:
        runtime.close()
    assert run.lines == ["started"], "the action ran (no init container held it back)"
    assert (outcome.state, outcome.action_reason, outcome.action_message) == (
        State.FAILED,
        "",
        "/dev/sdz does not exist",
    )
    assert len(pods_seen) == 1


def test_the_test_server_drops_the_sidecar_field_like_an_old_server(
    server_cluster: Cluster, behaviour: ServerBehaviour
) -> None:
    behaviour.no_sidecars = True
    manifest = job_manifest(
        new_action(TEST_IMAGE, "true"),
        f"old-{uuid.uuid4().hex[:8]}",
        JobOptions("default", failure_helper_image=TEST_IMAGE),
    )
    answer = server_cluster.batch.api_client.sanitize_for_serialization(
        server_cluster.batch.create_namespaced_job("default", manifest, dry_run="All")
    )
    (init,) = answer["spec"]["template"]["spec"]["initContainers"]
    assert init["name"] == HELPER_NAME and "restartPolicy" not in init


# The test kubelet runs init containers and sidecars as a real kubelet -------------------------


def _job(name: str, init: list[dict[str, Any]], args: list[str]) -> dict[str, Any]:
    return job_body(
        name, *args, labels={},
        container={"imagePullPolicy": "Never", "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]},
        pod={"volumes": [{"name": "shared", "emptyDir": {}}], "initContainers": init},
    )  # fmt: skip


def _init(name: str, script: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": TEST_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
        "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
        **fields,
    }


@contextlib.contextmanager
def _made(cluster: Cluster, body: dict[str, Any]) -> Iterator[str]:
    name = str(body["metadata"]["name"])
    cluster.batch.create_namespaced_job("default", body)
    try:
        yield f"batch.kubernetes.io/job-name={name}"
    finally:
        with contextlib.suppress(ApiException):
            cluster.batch.delete_namespaced_job(name, "default", propagation_policy="Foreground")


def _final_pod(cluster: Cluster, selector: str, done: Any) -> Any:
    def check() -> Any:
        pods = cluster.core.list_namespaced_pod("default", label_selector=selector).items
        return pods[0] if pods and done(pods[0]) else None

    return wait_until(check, what="the pod's end")


def test_a_second_delete_does_not_remove_a_pod_before_its_containers_stopped(server_cluster: Cluster) -> None:
    body = _job(f"twice-{uuid.uuid4().hex[:8]}", [], ["sh", "-c", "echo up; exec sleep 60"])
    body["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 2
    with _made(server_cluster, body) as selector:
        pod = _final_pod(server_cluster, selector, lambda pod: pod.status.phase == "Running")
        name = pod.metadata.name
        server_cluster.core.delete_namespaced_pod(name, "default")
        wait_until(
            lambda: server_cluster.core.read_namespaced_pod(name, "default").metadata.deletion_timestamp
        )
        server_cluster.core.delete_namespaced_pod(name, "default")  # as the Job's deletion does
        # sleep ignores SIGTERM as pid 1: the pod stays (marked) for its grace period, then shows
        # its container killed before it goes
        time.sleep(1.0)
        marked = server_cluster.core.read_namespaced_pod(name, "default")
        assert marked.metadata.deletion_timestamp is not None
        wait_until(
            lambda: not server_cluster.core.list_namespaced_pod("default", label_selector=selector).items,
            what="the pod to go",
        )


def test_plain_init_containers_run_to_their_end_first(server_cluster: Cluster) -> None:
    body = _job(
        f"init-{uuid.uuid4().hex[:8]}",
        [_init("first", "sleep 1; echo one > /shared/order"), _init("second", "echo two >> /shared/order")],
        ["cat", "/shared/order"],
    )
    with _made(server_cluster, body) as selector:
        pod = _final_pod(server_cluster, selector, lambda pod: pod.status.phase == "Succeeded")
        log = server_cluster.core.read_namespaced_pod_log(pod.metadata.name, "default")
    assert log.split() == ["one", "two"]
    assert [s.state.terminated.exit_code for s in pod.status.init_container_statuses] == [0, 0]


def test_a_failing_init_container_fails_the_pod_and_the_action_never_starts(server_cluster: Cluster) -> None:
    body = _job(f"init-{uuid.uuid4().hex[:8]}", [_init("setup", "exit 4")], ["echo", "never"])
    with _made(server_cluster, body) as selector:
        pod = _final_pod(server_cluster, selector, lambda pod: pod.status.phase == "Failed")
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 4
    assert pod.status.container_statuses[0].state.waiting is not None


def test_a_sidecar_starts_first_and_is_stopped_after_the_action_with_its_message(
    server_cluster: Cluster,
) -> None:
    sidecar = _init(
        "sidecar",
        "echo up > /shared/sidecar; "
        "trap 'cat /shared/result > /dev/termination-log; exit 0' TERM; "
        "while :; do sleep 3600 & wait $!; done",
        restartPolicy="Always",
    )
    body = _job(
        f"side-{uuid.uuid4().hex[:8]}",
        [sidecar],
        ["sh", "-c", "cat /shared/sidecar; echo 7 > /shared/result"],
    )

    def sidecar_ended(pod: Any) -> bool:
        statuses = pod.status.init_container_statuses or []
        return bool(statuses and statuses[0].state.terminated)

    with _made(server_cluster, body) as selector:
        pod = _final_pod(server_cluster, selector, sidecar_ended)
        log = server_cluster.core.read_namespaced_pod_log(pod.metadata.name, "default")
        job = server_cluster.batch.read_namespaced_job(body["metadata"]["name"], "default")
    assert log.split() == ["up"], "the action started after the sidecar had"
    assert pod.status.phase == "Succeeded"  # the regular container decides
    terminated = pod.status.init_container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.message) == (0, "7\n")
    assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or ())
