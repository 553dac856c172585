"""Memory figures of a process as Linux reports them in ``/proc/PID/status``, for the benches.

The peak is ``VmHWM``, never ``getrusage``'s ``ru_maxrss``: Linux carries that across exec, so a
freshly started interpreter would report the peak of the process that started it whenever that
was larger.
"""

from __future__ import annotations

from pathlib import Path


def status_kib(pid: int | str = "self") -> dict[str, int]:
    """The numeric fields of ``/proc/PID/status`` (sizes in KiB, ``Threads`` a count)."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            values[key] = int(words[0])
    return values


def mib(field: str, pid: int | str = "self") -> float:
    """One size field of ``pid`` in MiB: ``VmRSS`` (now), ``VmHWM`` (peak), ``RssAnon``…"""
    return status_kib(pid)[field] / 1024
