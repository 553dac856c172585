"""A factory named by its import path, so a plugin's entry point stays cheap to load.

Every ``tinklet`` start (``--help``, ``plugins list``, a worker on another runtime) imports every
installed plugin's entry-point module. A runtime plugin that hands :class:`LazyFactory` to its
:class:`~tinklet_core.runtime.RuntimeSpec` instead of its runtime class keeps the runtime's
modules (and its client library) out of every start but the one that opens it. ``hooks`` names
the hooks the runtime class implements, so ``tinklet plugins list`` can show them without
importing it; :func:`tinklet_core.plugins.factory_hooks` reads them, and a test compares them
with the class's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LazyFactory:
    """Calls ``module:Class`` (imported on the first call) with the runtime's (or a transport's)
    settings."""

    target: str
    """``"package.module:ClassName"``: the runtime class or factory function (a dotted name
    after the colon reaches an attribute: ``"module:Class.from_settings"``)."""
    hooks: tuple[str, ...] = ()
    """The ``tinklet_*`` hooks the runtime's objects implement (shown by ``plugins list``)."""

    def resolve(self) -> Any:
        """Import and return the runtime class (or function) the target names."""
        module_name, _, attribute = self.target.partition(":")
        found: Any = importlib.import_module(module_name)
        for name in attribute.split("."):
            found = getattr(found, name)
        return found

    def __call__(self, settings: Any) -> Any:
        """Open the runtime (or transport): import its class and call it with ``settings``."""
        return self.resolve()(settings)
