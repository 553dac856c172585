"""podman runtime for tinklet."""
