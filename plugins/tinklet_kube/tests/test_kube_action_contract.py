"""The action contract on Kubernetes: the failure message comes back as the container's
termination message, and the proxy settings reach the pod's env."""

from __future__ import annotations

from kube_helpers import new_action
from tinklet_kube.manifests import JobOptions, job_manifest
from tinklet_kube.outcome import with_action_files

from tinklet_core.model import Outcome, State
from tinklet_core.proxy import ProxySettings


def test_the_message_file_is_the_termination_message_on_a_private_volume() -> None:
    pod = job_manifest(new_action("img"), "n", JobOptions("ns"))["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["terminationMessagePath"] == "/tinkerbell/failure-message"
    assert {"name": "tinkerbell", "mountPath": "/tinkerbell"} in container["volumeMounts"]
    assert {"name": "tinkerbell", "emptyDir": {}} in pod["volumes"]


def test_pods_get_the_proxy_unless_the_action_sets_it() -> None:
    proxy = ProxySettings(http="http://proxy.test:3128", no_proxy="10.0.0.0/8")
    action = new_action("img", env=(("https_proxy", "http://own.test:8080"), ("HTTP_PROXY", "")))
    job = job_manifest(action, "n", JobOptions("ns", proxy=proxy))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "https_proxy", "value": "http://own.test:8080"},
        {"name": "HTTP_PROXY", "value": ""},
        {"name": "NO_PROXY", "value": "10.0.0.0/8"},
        {"name": "no_proxy", "value": "10.0.0.0/8"},
    ]


def test_the_termination_message_is_one_escaped_line_on_failures_only() -> None:
    failed = with_action_files(Outcome(State.FAILED, "exit code 1"), "disk\n\x1b[31mgone\n")
    assert failed.action_message == "disk | \\x1b[31mgone"
    success = Outcome(State.SUCCESS)
    assert with_action_files(success, "all fine") == success
    assert with_action_files(Outcome(State.FAILED), "") == Outcome(State.FAILED)
    reason = with_action_files(Outcome(State.TIMEOUT), "m", "Disk\x1b\n" + "x" * 300)
    assert reason.action_message == "m" and reason.action_reason.startswith("Disk\\x1b | xx")
    assert len(reason.action_reason.encode()) <= 256 + len("\\x1b | …".encode())
