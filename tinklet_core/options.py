"""How a plugin declares a setting of its own.

A :class:`PluginOption` becomes a flag ``--NAME``, an environment variable ``TINKLET_NAME`` and a
key ``name`` of the config file, exactly like the core's options, and is shown in ``--help``
under its plugin's heading. Only the plugin that declared an option receives its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PluginOption:
    """One plugin setting, offered as ``--NAME``, ``TINKLET_NAME`` and ``name:`` in the config file.

    ``kind`` is ``str``, ``int``, ``float``, ``bool`` or ``list``. A ``list`` option is a
    repeatable flag (``--mirror-allow A --mirror-allow B``), a comma-separated environment
    variable (``TINKLET_MIRROR_ALLOW=A,B``) and a YAML list in the config file; the plugin gets a
    tuple of strings (``()`` when unset). A single-value flag given twice keeps the last value,
    with a warning. ``help`` is a sentence. ``env_fallback``
    names a conventional variable (``DOCKER_HOST``, ``KUBECONFIG``) read after the config file and
    before the default. The plugin receives the value under ``key`` (dashes become underscores).
    """

    name: str
    help: str
    kind: type = str
    default: Any = None
    env_fallback: str | None = None

    @property
    def key(self) -> str:
        """The name the owning plugin reads the value under: dashes become underscores."""
        return self.name.replace("-", "_")
