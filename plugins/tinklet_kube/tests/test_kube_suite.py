"""The core's runtime behaviour suite, run unchanged against the kube runtime: on the test API
server (pods on the local dockerd), and on a real cluster when ``TINKLET_TEST_KUBECONFIG`` names
a kubeconfig."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from kube_helpers import REAL_CLUSTER_ENV, TEST_IMAGE
from kubernetes import client
from kubernetes.config.kube_config import new_client_from_config
from tinklet_kube.names import label_value
from tinklet_kube_testing import KubeTestServer

from tinklet_core.testing.runtime_suite import AGENT, RuntimeBehaviourSuite


class KubeSuite(RuntimeBehaviourSuite):
    """The suite on some cluster: set ``kubeconfig`` and ``namespace`` before each test."""

    runtime_name = "kube"
    host_namespaces: ClassVar[bool] = False  # refused unless --kube-allow-host
    host_volumes: ClassVar[bool] = False
    kubeconfig = ""
    namespace = "default"

    def runtime_options(self) -> dict[str, Any]:
        return {
            "kubeconfig": self.kubeconfig,
            "kube_namespace": self.namespace,
            "kube_failure_helper_image": self.image,
        }

    def cli_options(self) -> list[str]:
        return [
            *("--kubeconfig", self.kubeconfig, "--kube-namespace", self.namespace),
            *("--kube-failure-helper-image", self.image),
        ]

    def startup_allowance(self) -> float:
        # the Job's foreground deletion (pod grace period, then the Job) comes after the kill
        return 2.0

    def leftovers(self) -> list[str]:
        """Jobs and pods of the suite's agent still in the namespace."""
        api_client = new_client_from_config(config_file=self.kubeconfig, persist_config=False)
        selector = f"tinklet.agent={label_value(AGENT)}"
        try:
            jobs: Any = client.BatchV1Api(api_client).list_namespaced_job(
                self.namespace, label_selector=selector
            )
            pods: Any = client.CoreV1Api(api_client).list_namespaced_pod(
                self.namespace, label_selector=selector
            )
            return [f"job/{job.metadata.name}" for job in jobs.items] + [
                f"pod/{pod.metadata.name}" for pod in pods.items
            ]
        finally:
            api_client.close()


class TestKubeBehaviourOnTestServer(KubeSuite):
    """The suite against the test API server."""

    image = TEST_IMAGE
    pulls_from_registries: ClassVar[bool] = False  # its kubelet pulls nothing

    # An absent image never appears here: fail its pull after 5 s, not the default 60 s.
    def runtime_options(self) -> dict[str, Any]:
        return {**super().runtime_options(), "kube_pull_timeout": 5}

    def cli_options(self) -> list[str]:
        return [*super().cli_options(), "--kube-pull-timeout", "5"]

    @pytest.fixture(autouse=True)
    def _on_test_server(self, test_server: KubeTestServer) -> Iterator[None]:
        self.kubeconfig = str(test_server.kubeconfig)
        yield


class TestKubeBehaviourOnRealCluster(KubeSuite):
    """The suite against the cluster ``TINKLET_TEST_KUBECONFIG`` names (skipped without one)."""

    image = os.environ.get("TINKLET_TEST_KUBE_IMAGE", "busybox:1.36")

    @pytest.fixture(autouse=True)
    def _on_real_cluster(self) -> Iterator[None]:
        path = os.environ.get(REAL_CLUSTER_ENV)
        if not path:
            pytest.skip(f"{REAL_CLUSTER_ENV} does not name a kubeconfig: no real cluster to test against")
        self.kubeconfig = path
        self.namespace = os.environ.get("TINKLET_TEST_KUBE_NAMESPACE", "default")
        yield

    def startup_allowance(self) -> float:
        return 30.0  # scheduling and image pulls on a real cluster
