"""Durations written the way Go's ``time.Duration.String()`` writes them.

The Tink server stores a status report's ``execution_duration`` as such a string (``"1m3s"``), so
tinklet writes durations in the same form.
"""

from __future__ import annotations

import datetime as dt

_NANOS_PER_SECOND = 1_000_000_000
_SUB_SECOND_UNITS = (  # (at least this many ns, digits after the point, unit)
    (1_000_000, 6, "ms"),
    (1_000, 3, "\u00b5s"),  # Go writes the micro sign, U+00B5
    (1, 0, "ns"),
)


def format_go_duration(duration: dt.timedelta) -> str:
    """Format ``duration`` like Go's ``time.Duration.String()``.

    Examples: ``"0s"``, ``"150ms"``, ``"2.5s"``, ``"1m3s"``, ``"1h0m0s"``, ``"-1.5s"``. Units
    below a second are used only for durations shorter than a second; trailing zeros of the
    fraction are dropped. ``timedelta`` holds microseconds, so ``"ns"`` never appears here.
    """
    nanos = _total_nanoseconds(duration)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < _NANOS_PER_SECOND:
        for size, digits, unit in _SUB_SECOND_UNITS:
            if nanos >= size:
                return f"{sign}{_with_fraction(nanos, digits)}{unit}"
    seconds_part = _with_fraction(nanos % (60 * _NANOS_PER_SECOND), 9) + "s"
    minutes, hours = (nanos // (60 * _NANOS_PER_SECOND)) % 60, nanos // (3600 * _NANOS_PER_SECOND)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds_part}"
    if minutes:
        return f"{sign}{minutes}m{seconds_part}"
    return f"{sign}{seconds_part}"


def _total_nanoseconds(duration: dt.timedelta) -> int:
    """Exact integer nanoseconds (no float rounding)."""
    return ((duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds) * 1_000


def _with_fraction(value: int, digits: int) -> str:
    """``value`` scaled down by ``10**digits``, with the fraction's trailing zeros removed."""
    if digits == 0:
        return str(value)
    whole, fraction = divmod(value, 10**digits)
    fraction_text = f"{fraction:0{digits}d}".rstrip("0")
    return f"{whole}.{fraction_text}" if fraction_text else str(whole)
