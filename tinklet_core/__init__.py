"""tinklet: a Tinkerbell worker whose container runtimes are plugins.

The plugin API in one import::

    from tinklet_core import hookimpl, RuntimeSpec, TransportSpec, ActionContext, Outcome, Action

Every name in :data:`__all__` is stable; each is loaded from its module on first use, so
``import tinklet_core`` stays cheap (the modules named in :data:`_PUBLIC` remain importable too).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tinklet_core.markers import hookimpl

if TYPE_CHECKING:
    from tinklet_core.errors import (
        ActionInterrupted,
        ActionRefused,
        MalformedAction,
        RuntimeUnavailable,
        TinkletError,
        TransportError,
    )
    from tinklet_core.model import (
        Action,
        Event,
        Outcome,
        PullPhase,
        PullProgress,
        RegistryCredentials,
        State,
        Volume,
    )
    from tinklet_core.options import PluginOption
    from tinklet_core.runtime import (
        ActionContext,
        LineSplitter,
        Privilege,
        PullPolicy,
        Runtime,
        RuntimeOption,
        RuntimeSettings,
        RuntimeSpec,
        WaitResult,
        WorkflowEnvironment,
        image_registry,
        wait_for_exit,
    )
    from tinklet_core.transports.base import Transport
    from tinklet_core.transports.spec import TransportSettings, TransportSpec
    from tinklet_core.workflow import Workflow, load_workflow, parse_workflow

_PUBLIC: dict[str, str] = {
    **dict.fromkeys(
        (
            "ActionInterrupted",
            "ActionRefused",
            "MalformedAction",
            "RuntimeUnavailable",
            "TinkletError",
            "TransportError",
        ),
        "tinklet_core.errors",
    ),
    **dict.fromkeys(
        ("Action", "Event", "Outcome", "PullPhase", "PullProgress", "RegistryCredentials", "State", "Volume"),
        "tinklet_core.model",
    ),
    "PluginOption": "tinklet_core.options",
    **dict.fromkeys(
        (
            "ActionContext",
            "LineSplitter",
            "Privilege",
            "PullPolicy",
            "Runtime",
            "RuntimeOption",
            "RuntimeSettings",
            "RuntimeSpec",
            "WaitResult",
            "WorkflowEnvironment",
            "image_registry",
            "wait_for_exit",
        ),
        "tinklet_core.runtime",
    ),
    "Transport": "tinklet_core.transports.base",
    "TransportSettings": "tinklet_core.transports.spec",
    "TransportSpec": "tinklet_core.transports.spec",
    **dict.fromkeys(("Workflow", "load_workflow", "parse_workflow"), "tinklet_core.workflow"),
}
"""Each public name and the module it lives in."""

__all__ = [
    "Action",
    "ActionContext",
    "ActionInterrupted",
    "ActionRefused",
    "Event",
    "LineSplitter",
    "MalformedAction",
    "Outcome",
    "PluginOption",
    "Privilege",
    "PullPhase",
    "PullPolicy",
    "PullProgress",
    "RegistryCredentials",
    "Runtime",
    "RuntimeOption",
    "RuntimeSettings",
    "RuntimeSpec",
    "RuntimeUnavailable",
    "State",
    "TinkletError",
    "Transport",
    "TransportError",
    "TransportSettings",
    "TransportSpec",
    "Volume",
    "WaitResult",
    "Workflow",
    "WorkflowEnvironment",
    "hookimpl",
    "image_registry",
    "load_workflow",
    "parse_workflow",
    "wait_for_exit",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module the first time it is asked for."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'tinklet_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
