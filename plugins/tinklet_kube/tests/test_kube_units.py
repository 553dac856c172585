"""The kube runtime's pure parts: names, manifests and how a Job's state becomes an Outcome."""

from __future__ import annotations

import base64
import json

import pytest
from kube_helpers import new_action
from tinklet_kube.follow import pod_selector, printable
from tinklet_kube.manifests import JobOptions, job_manifest, pull_secret_manifest, unsupported_reason
from tinklet_kube.names import is_dns_label, is_label_value, job_name, label_value, pull_secret_name
from tinklet_kube.outcome import JobView, Limits
from tinklet_kube.watch import WatchEvent

from tinklet_core.model import RegistryCredentials, State, Volume
from tinklet_core.runtime import Privilege, PullPolicy

LONG = "Provision-Disk/" + "x" * 200


@pytest.mark.parametrize(
    ("workflow", "action"),
    [("wf", "task/hello"), ("WF_1", LONG), ("", "/"), ("9f1c-uuid", "ÄÖÜ ünïcode"), ("a" * 300, "b" * 300)],
)
def test_job_names_are_valid_dns_labels_and_deterministic(workflow: str, action: str) -> None:
    name = job_name(workflow, action)
    assert is_dns_label(name) and name.startswith("tinklet-")
    assert job_name(workflow, action) == name
    assert is_dns_label(pull_secret_name(workflow, action))
    assert pull_secret_name(workflow, "agent-1") != pull_secret_name(workflow, "agent-2")


def test_job_names_differ_when_ids_differ() -> None:
    names = {
        job_name("wf", "task/a"),
        job_name("wf", "task-a"),
        job_name("wf2", "task/a"),
        job_name("w", "ftask/a"),
    }
    assert len(names) == 4
    assert job_name("wf", "task/hello").startswith("tinklet-task-hello-")


def test_label_values_are_kept_when_valid_and_made_valid_otherwise() -> None:
    assert label_value("wf-1.2_3") == "wf-1.2_3"
    for raw in ("task/hello", LONG, "-leading", "é", ""):
        assert is_label_value(label_value(raw)), raw
    assert label_value("task/hello") != label_value("task-hello")


def test_job_manifest_maps_the_action() -> None:
    action = new_action(
        "registry.test/tools/disk:1",
        "sh",
        "-c",
        "echo $HOME $(X)",
        env=(("A", "b c=d"), ("PRICE", "$5")),
        timeout=90,
    )
    options = JobOptions("ns", Privilege.PRIVILEGED, PullPolicy.ALWAYS, "prov", pull_secret="tinklet-pull-x")
    job = job_manifest(action, "tinklet-job", options)
    assert job["metadata"]["namespace"] == "ns"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 90
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "prov"
    assert pod["imagePullSecrets"] == [{"name": "tinklet-pull-x"}]
    assert "hostPID" not in pod and "hostNetwork" not in pod
    # no host volume, only the action's private /tinkerbell
    assert pod["volumes"] == [{"name": "tinkerbell", "emptyDir": {}}]
    (container,) = pod["containers"]
    assert "command" not in container  # the image's ENTRYPOINT stays, like docker's CMD override
    assert container["args"] == ["sh", "-c", "echo $$HOME $$(X)"]
    assert container["env"] == [{"name": "A", "value": "b c=d"}, {"name": "PRICE", "value": "$$5"}]
    assert container["imagePullPolicy"] == "Always"
    assert container["securityContext"] == {"privileged": True}


def test_job_manifest_privilege_pull_policy_and_no_deadline() -> None:
    action = new_action("img", timeout=0)
    caps = job_manifest(action, "n", JobOptions("ns", Privilege.ALL_CAPS, PullPolicy.NEVER))
    pod = caps["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"] == {"privileged": False, "capabilities": {"add": ["ALL"]}}
    assert pod["containers"][0]["imagePullPolicy"] == "Never"
    assert "args" not in pod["containers"][0]
    assert "activeDeadlineSeconds" not in caps["spec"]
    plain = job_manifest(action, "n", JobOptions("ns", Privilege.NONE, PullPolicy.MISSING))
    container = plain["spec"]["template"]["spec"]["containers"][0]
    assert "securityContext" not in container and container["imagePullPolicy"] == "IfNotPresent"


def test_host_fields_map_only_when_allowed() -> None:
    action = new_action(
        "img",
        pid_namespace="host",
        network_namespace="host",
        volumes=(Volume("/dev", "/dev"), Volume("/etc/hostname", "/h", read_only=True)),
    )
    reason = unsupported_reason(action, allow_host=False)
    assert reason is not None
    assert reason.startswith("pid namespace 'host', network namespace 'host', host path volume /dev:/dev, ")
    assert unsupported_reason(action, allow_host=True) is None
    pod = job_manifest(action, "n", JobOptions("ns", allow_host=True))["spec"]["template"]["spec"]
    assert pod["hostPID"] is True and pod["hostNetwork"] is True
    assert pod["volumes"][1] == {"name": "host-1", "hostPath": {"path": "/etc/hostname"}}
    assert pod["containers"][0]["volumeMounts"][1] == {"name": "host-1", "mountPath": "/h", "readOnly": True}
    other = new_action("img", pid_namespace="container:abc")
    assert "pid namespace 'container:abc' is not supported" in str(unsupported_reason(other, allow_host=True))


def test_pull_secret_manifest_is_a_dockerconfigjson() -> None:
    credentials = [RegistryCredentials("docker.io", "u", "p"), RegistryCredentials("reg.test:5000", "v", "q")]
    secret = pull_secret_manifest("s", "ns", "wf/1", "agent", credentials)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    document = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert set(document["auths"]) == {"https://index.docker.io/v1/", "reg.test:5000"}
    assert base64.b64decode(document["auths"]["reg.test:5000"]["auth"]) == b"v:q"
    assert secret["metadata"]["annotations"]["tinklet.workflow"] == "wf/1"


# How the watched state becomes an Outcome ---------------------------------------------------


def _job(*conditions: tuple[str, str], deadline: int | None = None) -> dict[str, object]:
    status = {
        "conditions": [{"type": kind, "status": "True", "reason": reason} for kind, reason in conditions]
    }
    spec = {"activeDeadlineSeconds": deadline} if deadline else {}
    return {"metadata": {"name": "job"}, "spec": spec, "status": status}


def _pod(phase: str, state: dict[str, object]) -> dict[str, object]:
    return {
        "metadata": {"name": "job-abcde", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "status": {"phase": phase, "containerStatuses": [{"name": "action", "state": state}]},
    }


def _view(job: dict[str, object] | None, *pods: dict[str, object]) -> JobView:
    view = JobView()
    view.apply_job(WatchEvent("SYNC", (job,) if job else ()))
    view.apply_pod(WatchEvent("SYNC", pods))
    return view


def test_outcome_waits_while_running_and_follows_started_pods() -> None:
    view = _view(_job(), _pod("Pending", {"waiting": {"reason": "ContainerCreating"}}))
    assert view.outcome(0.0) is None and view.pod_to_follow() is None
    view.apply_pod(WatchEvent("MODIFIED", (_pod("Running", {"running": {}}),)))
    assert view.outcome(0.0) is None and view.pod_to_follow() == "job-abcde"
    assert JobView().outcome(0.0) is None  # nothing listed yet


def test_outcome_of_success_and_failure() -> None:
    done = _pod("Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed"}})
    assert _view(_job(("Complete", "")), done).outcome(0.0).state is State.SUCCESS  # type: ignore[union-attr]
    failed = _pod("Failed", {"terminated": {"exitCode": 3, "reason": "Error"}})
    outcome = _view(_job(("Failed", "BackoffLimitExceeded")), failed).outcome(0.0)
    assert outcome is not None and (outcome.state, outcome.reason, outcome.exit_code) == (
        State.FAILED,
        "exit code 3",
        3,
    )


def test_oom_killed_is_named_in_the_reason() -> None:
    killed = _pod("Failed", {"terminated": {"exitCode": 137, "reason": "OOMKilled"}})
    outcome = _view(_job(("Failed", "BackoffLimitExceeded")), killed).outcome(0.0)
    assert outcome is not None and outcome.reason == "exit code 137 (OOMKilled)" and outcome.exit_code == 137


def test_a_failing_job_waits_for_its_pod_final_status() -> None:
    view = _view(_job(("FailureTarget", "BackoffLimitExceeded")), _pod("Running", {"running": {}}))
    assert view.outcome(0.0) is None
    view.apply_pod(WatchEvent("DELETED", (_pod("Running", {"running": {}}),)))
    outcome = view.outcome(0.0)
    assert outcome is not None and outcome.state is State.FAILED


def test_deadline_exceeded_is_a_timeout() -> None:
    killed = _pod("Failed", {"terminated": {"exitCode": 137, "reason": "Error"}})
    outcome = _view(_job(("FailureTarget", "DeadlineExceeded"), deadline=5), killed).outcome(0.0)
    assert outcome is not None and (outcome.state, outcome.reason) == (State.TIMEOUT, "timed out after 5s")


@pytest.mark.parametrize("reason", ["ErrImageNeverPull", "InvalidImageName"])
def test_lasting_pull_failures_fail_at_once_with_the_message(reason: str) -> None:
    waiting = _pod("Pending", {"waiting": {"reason": reason, "message": "pull access denied"}})
    outcome = _view(_job(), waiting).outcome(0.0)
    assert outcome is not None
    assert (outcome.state, outcome.reason) == (State.FAILED, "image pull failed: pull access denied")


def test_transient_pull_failures_fail_after_the_pull_limit_with_the_pull_message() -> None:
    view = JobView(limits=Limits(schedule=300, pull=30))
    view.apply_job(WatchEvent("SYNC", (_job(),)))
    failing = _pod("Pending", {"waiting": {"reason": "ErrImagePull", "message": "i/o timeout"}})
    view.apply_pod(WatchEvent("SYNC", (failing,)), now=100.0)
    backoff = _pod("Pending", {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}})
    view.apply_pod(WatchEvent("MODIFIED", (backoff,)), now=110.0)
    assert view.outcome(129.0) is None
    assert view.trouble(129.0) == (
        "pulling the image of pod job-abcde failed, the kubelet retries: i/o timeout"
    )
    outcome = view.outcome(130.0)
    assert outcome is not None and (outcome.state, outcome.reason) == (
        State.FAILED,
        "image pull failed: i/o timeout",
    )
    # a pull that recovers starts the clock afresh
    view.apply_pod(WatchEvent("MODIFIED", (_pod("Running", {"running": {}}),)), now=131.0)
    assert view.outcome(500.0) is None and view.pull_failing_since is None


def test_success_comes_from_the_pod_not_from_the_job() -> None:
    # the Job's watch can show Complete before the pods' watch shows the pod running
    view = _view(_job(("Complete", "")), _pod("Pending", {"waiting": {"reason": "ContainerCreating"}}))
    assert view.outcome(0.0) is None and view.needs_pod_list()
    done = _pod("Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed"}})
    view.apply_pod(WatchEvent("MODIFIED", (done,)))
    outcome = view.outcome(0.0)
    assert outcome is not None and outcome.state is State.SUCCESS and not view.needs_pod_list()
    # and a pod that ended shows its result before the Job does
    failed = _pod("Failed", {"terminated": {"exitCode": 2, "reason": "Error"}})
    outcome = _view(_job(), failed).outcome(0.0)
    assert outcome is not None and (outcome.state, outcome.exit_code) == (State.FAILED, 2)


def test_an_unplaced_pod_fails_after_the_schedule_limit_with_the_schedulers_words() -> None:
    pending = {
        "metadata": {"name": "job-abcde", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
            ],
        },
    }
    view = JobView(started=10.0, limits=Limits(schedule=60, pull=30))
    view.apply_job(WatchEvent("SYNC", (_job(),)))
    view.apply_pod(WatchEvent("SYNC", (pending,)))
    assert view.outcome(69.0) is None
    assert view.trouble(11.0) == "pod job-abcde is not scheduled: Unschedulable: 0/3 nodes"
    outcome = view.outcome(70.0)
    assert outcome is not None and outcome.state is State.FAILED
    assert outcome.reason == "the pod was not scheduled within 60s: Unschedulable: 0/3 nodes"
    nothing = JobView(started=0.0, limits=Limits(schedule=5, pull=30))
    nothing.apply_job(WatchEvent("SYNC", (_job(),)))
    nothing.apply_pod(WatchEvent("SYNC", ()))
    late = nothing.outcome(5.0)
    assert late is not None and late.reason == "no pod was made for the Job within 5s"


def test_pods_are_selected_by_the_jobs_own_selector() -> None:
    current = {
        "metadata": {"uid": "u1"},
        "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}},
    }
    assert pod_selector(current) == "batch.kubernetes.io/controller-uid=u1"
    assert pod_selector({"metadata": {"uid": "u2"}, "spec": {}}) == "controller-uid=u2"


def test_a_deleted_job_fails_the_action() -> None:
    outcome = _view(None).outcome(0.0)
    assert outcome is not None and outcome.state is State.FAILED and "deleted" in outcome.reason


def test_server_text_is_one_printable_line() -> None:
    assert printable("0/3 nodes\n are \x1b[31mavailable") == "0/3 nodes are \\x1b[31mavailable"
