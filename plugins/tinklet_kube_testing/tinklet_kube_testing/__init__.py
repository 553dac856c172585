"""Test doubles for the kube runtime (their own distribution, ``tinklet-kube-testing``, kept out of
the ``tinklet-kube`` wheel): a Kubernetes API server whose pods run on dockerd.

Needs the ``docker`` package and a running dockerd.
"""

from tinklet_kube_testing.apiserver import KubeTestServer
from tinklet_kube_testing.kubelet import CONTAINER_LABEL

__all__ = ["CONTAINER_LABEL", "KubeTestServer"]
