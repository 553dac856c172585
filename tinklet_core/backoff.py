"""Waiting between retries, and logging a condition once rather than on every retry."""

from __future__ import annotations

import logging
import random


class Backoff:
    """Exponential backoff with full jitter, capped; ``reset`` after a success."""

    def __init__(self, low: float, high: float, rng: random.Random | None = None) -> None:
        self._low = low
        self._high = max(low, high)
        self._ceiling = low
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The next wait: uniform between ``low`` and a ceiling that doubles up to ``high``."""
        delay = self._rng.uniform(self._low, self._ceiling)
        self._ceiling = min(self._high, self._ceiling * 2)
        return delay

    def reset(self) -> None:
        """Start again from the shortest wait."""
        self._ceiling = self._low


class StatusLog:
    """Logs a condition when it starts or changes, not on every retry.

    A condition is named by ``kind``; the text may vary between retries (gRPC's details do)
    without being logged again.
    """

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._current: str | None = None

    def note(self, level: int, text: str, kind: str | None = None) -> None:
        """Log ``text`` unless a condition of the same ``kind`` (default: the text) is current."""
        kind = kind or text
        if kind != self._current:
            self._log.log(level, text)
            self._current = kind

    def clear(self, recovered: str | None = None) -> None:
        """Forget the current condition; log ``recovered`` if one was reported."""
        if self._current is not None and recovered:
            self._log.info(recovered)
        self._current = None
