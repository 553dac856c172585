"""The ``dockercli`` runtime: Tinkerbell actions as containers, run with the ``docker`` command.

This is the plugin's entry-point module (group ``tinklet``, name ``dockercli``). It imports only
tinklet_core and the runtime class, so ``tinklet plugins list`` stays fast.
"""

from __future__ import annotations

from tinklet_core.hookspecs import hookimpl
from tinklet_core.options import PluginOption
from tinklet_core.runtime import RuntimeSpec
from tinklet_dockercli.runtime import DockerCliRuntime

__all__ = ["DockerCliRuntime", "tinklet_runtimes"]


@hookimpl
def tinklet_runtimes() -> list[RuntimeSpec]:
    """One runtime, ``dockercli``, with one option of its own."""
    return [
        RuntimeSpec(
            name="dockercli",
            factory=DockerCliRuntime,
            summary="containers through the docker command (plugin template)",
            options=(PluginOption("dockercli-command", "The docker command to run.", default="docker"),),
        )
    ]
