"""An image mirror: images from the registries in ``--mirror-allow`` run from ``--mirror-prefix``.

``--mirror-allow docker.io --mirror-allow quay.io --mirror-prefix mirror.local:5000`` runs
``quay.io/org/tool:1`` as ``mirror.local:5000/quay.io/org/tool:1`` and leaves other images alone.
Without ``--mirror-prefix`` nothing changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tinklet_core import Action, PluginOption, hookimpl, image_registry


@dataclasses.dataclass(frozen=True)
class Mirror:
    """The configured mirror: a prefix and the registries it serves."""

    prefix: str
    allowed: tuple[str, ...]

    @hookimpl
    def tinklet_rewrite_action(self, action: Action) -> Action | None:
        """The action with its image on the mirror, when its registry is allowed."""
        registry = image_registry(action.image)
        if registry not in self.allowed or action.image.startswith(self.prefix + "/"):
            return None
        return dataclasses.replace(action, image=f"{self.prefix}/{action.image}")


@hookimpl
def tinklet_options() -> list[PluginOption]:
    """``--mirror-prefix`` and the repeatable ``--mirror-allow``."""
    return [
        PluginOption("mirror-prefix", "Registry host (and path) of the mirror, e.g. mirror.local:5000."),
        PluginOption("mirror-allow", "A registry whose images run from the mirror.", kind=list),
    ]


@hookimpl
def tinklet_configure(options: Mapping[str, Any]) -> Mirror | None:
    """The mirror, when a prefix is set."""
    if not options["mirror_prefix"]:
        return None
    return Mirror(str(options["mirror_prefix"]).rstrip("/"), tuple(options["mirror_allow"]))
