"""Test helpers for the kube runtime: a Kubernetes API server whose pods run on dockerd.

Needs the ``docker`` package (the ``testing`` extra) and a running dockerd.
"""

from tinklet_kube.testing.apiserver import KubeTestServer
from tinklet_kube.testing.kubelet import CONTAINER_LABEL

__all__ = ["CONTAINER_LABEL", "KubeTestServer"]
