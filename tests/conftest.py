"""Shared fixtures for the core's tests."""

from __future__ import annotations

import pytest

from tinklet_core.plugins import LoadedPlugins, load_plugins

PROCESS_RUNTIME = "tinklet_core.testing.process_runtime"


@pytest.fixture
def process_plugins() -> LoadedPlugins:
    """A plugin manager with only the process runtime (no entry points)."""
    return load_plugins(autoload=False, extra=[PROCESS_RUNTIME])
