"""Fixtures for the kube runtime's tests: the test API server (pods on the local dockerd), or a
real cluster when ``TINKLET_TEST_KUBECONFIG`` names a kubeconfig.

With a real cluster, ``TINKLET_TEST_KUBE_NAMESPACE`` (default ``default``) is where Jobs run and
``TINKLET_TEST_KUBE_IMAGE`` (default ``busybox:1.36``) is the image the actions use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from kube_helpers import REAL_CLUSTER_ENV, TEST_IMAGE, Cluster
from tinklet_kube.runtime import KubeRuntime
from tinklet_kube_testing import KubeTestServer
from tinklet_kube_testing.behaviour import ServerBehaviour


@pytest.fixture(scope="session")
def test_server() -> Iterator[KubeTestServer]:
    """One test API server for the session; it removes its containers when it stops."""
    with KubeTestServer() as server:
        yield server


def _client_for(kubeconfig: str) -> tuple[Any, Any, Any]:
    from kubernetes import client
    from kubernetes.config.kube_config import new_client_from_config

    api_client = new_client_from_config(config_file=kubeconfig, persist_config=False)
    return api_client, client.BatchV1Api(api_client), client.CoreV1Api(api_client)


@pytest.fixture(params=["testserver", "real"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The test API server, then (when configured) a real cluster."""
    if request.param == "real":
        path = os.environ.get(REAL_CLUSTER_ENV)
        if not path:
            pytest.skip(f"{REAL_CLUSTER_ENV} does not name a kubeconfig: no real cluster to test against")
        found = Cluster(
            kubeconfig=path,
            namespace=os.environ.get("TINKLET_TEST_KUBE_NAMESPACE", "default"),
            image=os.environ.get("TINKLET_TEST_KUBE_IMAGE", "busybox:1.36"),
            server=None,
        )
    else:
        server = request.getfixturevalue("test_server")
        found = Cluster(
            kubeconfig=str(server.kubeconfig), namespace="default", image=TEST_IMAGE, server=server
        )
    api_client, found.batch, found.core = _client_for(found.kubeconfig)
    try:
        yield found
    finally:
        api_client.close()


@pytest.fixture
def behaviour(test_server: KubeTestServer) -> Iterator[ServerBehaviour]:
    """The session server's switches, put back to an ordinary cluster after the test."""
    try:
        yield test_server.behaviour
    finally:
        test_server.behaviour.reset()


@pytest.fixture
def server_cluster(test_server: KubeTestServer) -> Iterator[Cluster]:
    """The test API server only (for tests that look at its docker containers or pods)."""
    api_client, batch, core = _client_for(str(test_server.kubeconfig))
    try:
        yield Cluster(str(test_server.kubeconfig), "default", TEST_IMAGE, test_server, batch, core)
    finally:
        api_client.close()


@pytest.fixture
def runtime(cluster: Cluster) -> Iterator[KubeRuntime]:
    """The kube runtime opened on ``cluster``."""
    opened = KubeRuntime(cluster.settings())
    try:
        yield opened
    finally:
        opened.close()
