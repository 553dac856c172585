"""Kubernetes API outages mid-action (issue 22): a control-plane restart, a failover answering 503,
a server shedding load with 429. The action's outcome is what the pod did, its output arrives
once, the outage counts against its deadline, and its Job is deleted once the API answers again.

These tests take a test API server of their own down and up (the session's is shared): it comes
back on the same port with its store, and its pods keep running on the local dockerd meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from kube_helpers import TEST_IMAGE, Cluster, new_action, new_run, wait_until
from kubernetes.config.kube_config import new_client_from_config
from tinklet_kube.errors import KubeApiError
from tinklet_kube.retry import ApiRetry
from tinklet_kube.runtime import KubeRuntime
from tinklet_kube_testing import KubeTestServer

from tinklet_core.errors import EngineNotReady, RuntimeUnavailable
from tinklet_core.model import Outcome, State

# An action printing a numbered line a second, and the outages it is put through: the issue's
# 30 s action and 15 s outage exercise nothing more than these at twice the wall time. A server
# that is away stays away longer than the ~10 s a fixed number of reconnects used to ride out;
# one answering errors needs no more than a few seconds to show the same.
SECONDS = 16
AWAY = 12.0
ERRORS = 4.0
COUNTING = f"for i in $(seq 1 {SECONDS}); do echo line $i; sleep 1; done"
EXPECTED = [f"line {i}" for i in range(1, SECONDS + 1)]


@pytest.fixture(scope="module")
def own_server() -> Iterator[KubeTestServer]:
    """A test API server these tests may take down (back up and ordinary after each test)."""
    with KubeTestServer() as server:
        yield server


@pytest.fixture
def cluster(own_server: KubeTestServer) -> Iterator[Cluster]:
    """``own_server`` for the conftest's ``runtime``; back up and ordinary after the test."""
    from kubernetes import client

    api_client = new_client_from_config(config_file=str(own_server.kubeconfig), persist_config=False)
    try:
        yield Cluster(
            str(own_server.kubeconfig), "default", TEST_IMAGE, own_server,
            client.BatchV1Api(api_client), client.CoreV1Api(api_client),
        )  # fmt: skip
    finally:
        own_server.come_back()
        own_server.behaviour.reset()
        api_client.close()


class Running:
    """``tinklet_execute_action`` in a thread, its outcome once it returns."""

    def __init__(self, runtime: KubeRuntime, context: object) -> None:
        self.outcome: Outcome | None = None
        self._thread = threading.Thread(target=self._run, args=(runtime, context), daemon=True)
        self._thread.start()

    def _run(self, runtime: KubeRuntime, context: object) -> None:
        self.outcome = runtime.tinklet_execute_action(context)

    def result(self, timeout: float = 90) -> Outcome:
        self._thread.join(timeout)
        assert self.outcome is not None, "the action did not end"
        return self.outcome


def test_api_server_restart_mid_action_costs_nothing(
    cluster: Cluster, runtime: KubeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tinklet.kube")
    action = new_action(cluster.image, "sh", "-c", COUNTING, timeout=120)
    run = new_run(action, cluster.settings(), deadline=time.monotonic() + 120)
    running = Running(runtime, run.context)
    wait_until(lambda: "line 2" in run.lines, 30, "the action's second line")
    cluster.server.go_away()
    time.sleep(AWAY)
    cluster.server.come_back()
    outcome = running.result()
    assert outcome.state is State.SUCCESS, outcome
    assert run.lines == EXPECTED  # each line once, in order, also those written while away
    assert cluster.jobs(action.workflow_id) == []
    assert caplog.text.count("is not answering") == 1, caplog.text  # logged once per outage
    assert caplog.text.count("answers again after") == 1, caplog.text


@pytest.mark.parametrize("status", [503, 429])
def test_api_server_answering_errors_mid_action_costs_nothing(
    cluster: Cluster, runtime: KubeRuntime, status: int
) -> None:
    action = new_action(cluster.image, "sh", "-c", COUNTING, timeout=120)
    run = new_run(action, cluster.settings(), deadline=time.monotonic() + 120)
    running = Running(runtime, run.context)
    wait_until(lambda: "line 2" in run.lines, 30, "the action's second line")
    cluster.server.answer_errors(status, ERRORS, retry_after=1)
    outcome = running.result()
    assert outcome.state is State.SUCCESS, outcome
    assert run.lines == EXPECTED
    assert cluster.jobs(action.workflow_id) == []


def test_a_pod_that_ended_during_the_outage_is_reported_as_it_ended(
    cluster: Cluster, runtime: KubeRuntime
) -> None:
    script = "echo started; sleep 2; echo giving up; exit 3"
    action = new_action(cluster.image, "sh", "-c", script, timeout=120)
    run = new_run(action, cluster.settings(), deadline=time.monotonic() + 120)
    running = Running(runtime, run.context)
    wait_until(lambda: "started" in run.lines, 30, "the action's first line")
    cluster.server.go_away()
    time.sleep(AWAY)  # the pod ends meanwhile: its end is known only from the store
    cluster.server.come_back()
    outcome = running.result()
    assert outcome.state is State.FAILED, outcome
    assert "exit code 3" in (outcome.reason or ""), outcome
    assert run.lines == ["started", "giving up"]
    assert cluster.jobs(action.workflow_id) == []


def test_the_outage_counts_against_the_deadline_and_the_job_goes_once_the_api_is_back(
    cluster: Cluster, runtime: KubeRuntime
) -> None:
    action = new_action(cluster.image, "sh", "-c", "echo started; sleep 60", timeout=3)
    run = new_run(action, cluster.settings(), deadline=time.monotonic() + 3)
    running = Running(runtime, run.context)
    wait_until(lambda: "started" in run.lines, 30, "the action's first line")
    cluster.server.go_away()
    time.sleep(ERRORS)  # the deadline passes while the API is away: the Job cannot be deleted yet
    assert running.outcome is None  # still trying to delete the Job
    cluster.server.come_back()
    outcome = running.result()
    assert outcome.state is State.TIMEOUT, outcome
    assert cluster.jobs(action.workflow_id) == []


def test_opening_waits_only_for_an_api_that_is_away(own_server: KubeTestServer, cluster: Cluster) -> None:
    own_server.go_away()
    with pytest.raises(EngineNotReady):
        KubeRuntime(cluster.settings())
    own_server.come_back()
    own_server.answer_errors(503, 30)
    with pytest.raises(EngineNotReady):
        KubeRuntime(cluster.settings())
    own_server.behaviour.reset()
    with pytest.raises(RuntimeUnavailable) as caught:
        KubeRuntime(cluster.settings(kube_namespace="no-such-namespace"))
    assert not isinstance(caught.value, EngineNotReady)  # waiting cannot fix an unknown namespace


def test_retry_after_is_honoured() -> None:
    retry = ApiRetry()
    busy = KubeApiError("429 TooManyRequests", status=429, retry_after=3)
    assert all(retry.delay(busy) >= 3 for _ in range(5))
    away = KubeApiError("unreachable")
    assert all(retry.delay(away) <= 4 for _ in range(10))  # capped backoff without Retry-After
