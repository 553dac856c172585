"""kube runtime for tinklet."""
