"""What the behaviour suite needs to know about this runtime (``--tinklet-leftovers``)."""

from __future__ import annotations

from tinklet_dockercli.runtime import leftovers

__all__ = ["leftovers"]
