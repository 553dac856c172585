"""Turning an engine's pull stream into :class:`~tinklet_core.model.PullProgress` records.

Docker's ``POST /images/create`` stream (also Podman's Docker-compatible API) is a series of JSON
objects, one per layer step: ``{"id": LAYER, "status": "Downloading", "progressDetail":
{"current": N, "total": M}}``, then ``Download complete``, ``Extracting``, ``Pull complete`` (or
``Already exists`` for a layer the engine has). :class:`PullStreamProgress` adds the layers up
and reports bytes downloaded of the bytes known so far, at most every ``interval`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from tinklet_core.model import PullPhase, PullProgress

LAYER_DONE = ("Pull complete", "Already exists")


class PullStreamProgress:
    """Feed it each decoded event of a Docker-style pull stream; it calls ``report`` with a
    ``PROGRESS`` record now and then (never more often than every ``interval`` seconds)."""

    def __init__(
        self,
        image: str,
        report: Callable[[PullProgress], None],
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._image = image
        self._report = report
        self._interval = interval
        self._clock = clock
        self._last = -interval
        self._downloaded: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self._layers: set[str] = set()
        self._done: set[str] = set()

    def feed(self, event: Mapping[str, Any]) -> None:
        """Take one event of the stream into account."""
        layer = event.get("id")
        status = str(event.get("status", ""))
        if not isinstance(layer, str) or not layer or status.startswith("Pulling from"):
            return
        self._layers.add(layer)
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and isinstance(detail, Mapping):
            self._downloaded[layer] = int(detail.get("current") or 0)
            if detail.get("total"):
                self._sizes[layer] = int(detail["total"])
        elif status == "Download complete" and layer in self._sizes:
            self._downloaded[layer] = self._sizes[layer]
        elif status in LAYER_DONE:
            self._done.add(layer)
            if layer in self._sizes:  # a finished layer is whole, whichever progress events arrived
                self._downloaded[layer] = self._sizes[layer]
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._report(self.progress())

    def progress(self) -> PullProgress:
        """Where the pull stands: bytes when the engine gave sizes, else layers."""
        if self._sizes:
            return PullProgress(
                self._image, PullPhase.PROGRESS, sum(self._downloaded.values()), sum(self._sizes.values())
            )
        layers = (len(self._done), len(self._layers))
        return PullProgress(self._image, PullPhase.PROGRESS, *layers, unit="layers")
