"""The kube runtime's option defaults, in a module of their own so the entry point can name them
without importing the runtime's modules."""

DEFAULT_HELPER_IMAGE = "busybox:1.36"
"""Image of the native sidecar that reports an action's failure-reason."""
DEFAULT_SCHEDULE_LIMIT = 300.0
"""Seconds an action's pod may wait to be made and scheduled."""
DEFAULT_PULL_LIMIT = 60.0
"""Seconds an image pull may keep failing before the action fails."""
