"""The behaviour suite against the runtime named by ``pytest --tinklet-runtime NAME``.

Collected only when :mod:`tinklet_core.testing.pytest_plugin` adds it; see there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from tinklet_core.testing.pytest_plugin import core_options
from tinklet_core.testing.runtime_suite import AGENT, RuntimeBehaviourSuite


def _function(target: str) -> Callable[[str], list[str]]:
    module, _, name = target.partition(":")
    function: Callable[[str], list[str]] = getattr(importlib.import_module(module), name)
    return function


class TestRuntimeBehaviour(RuntimeBehaviourSuite):
    """Every behaviour a runtime must have, for the runtime given on the command line."""

    @pytest.fixture(autouse=True)
    def _from_command_line(self, request: pytest.FixtureRequest) -> None:
        config = request.config
        self.runtime_name = config.getoption("tinklet_runtime")  # type: ignore[misc]
        self.image = config.getoption("tinklet_image")  # type: ignore[misc]
        self._plugins: list[str] = list(config.getoption("tinklet_plugin"))
        self._options = dict(option.split("=", 1) for option in config.getoption("tinklet_option"))
        self._core_options = core_options(config)
        self._leftovers = _function(config.getoption("tinklet_leftovers"))

    def plugin_modules(self) -> list[str]:
        """The ``--tinklet-plugin`` modules."""
        return self._plugins

    def runtime_options(self) -> dict[str, Any]:
        """The ``--tinklet-option`` values, keyed as the runtime reads them."""
        return {name.replace("-", "_"): value for name, value in self._options.items()}

    def cli_options(self) -> list[str]:
        """The ``--tinklet-option`` values as flags of the worker process."""
        return [arg for name, value in self._options.items() for arg in (f"--{name}", value)]

    def core_options(self) -> dict[str, str]:
        """The ``--tinklet-core-option`` values."""
        return self._core_options

    def leftovers(self) -> list[str]:
        """What ``--tinklet-leftovers`` reports for the suite's agent."""
        return self._leftovers(AGENT)
