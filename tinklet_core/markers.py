"""The hook markers, in a module that imports nothing of tinklet's: any module may use them.

``hookimpl`` marks a plugin's implementation of a ``tinklet_*`` hook (also importable as
``from tinklet_core import hookimpl``); ``hookspec`` marks the contracts in
:mod:`tinklet_core.hookspecs`.
"""

from __future__ import annotations

import pluggy

PROJECT = "tinklet"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
