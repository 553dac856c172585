"""Start-up cost of tinklet on an in-memory OS: wall time and peak RSS, against a baseline.

Measures, median of N runs each, in one session so the figures are comparable:
- ``import tinklet_core`` (what every start pays),
- ``tinklet plugins list`` (entry points of every installed plugin loaded, none opened),
- the baseline a worker would pay if plugin discovery imported the kubernetes client
  (``import kubernetes.client`` and touching ``CoreV1Api``), which tinklet never does unless
  ``--runtime kube`` is chosen.

Run: ``.venv/bin/python bench/bench_startup.py [N]``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

CASES = {
    "import tinklet_core": [sys.executable, "-c", "import tinklet_core"],
    "tinklet plugins list": [sys.executable, "-m", "tinklet_core", "plugins", "list"],
    "baseline: kubernetes client": [sys.executable, "-c", "import kubernetes.client as k; k.CoreV1Api"],
}


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of ``command``, from its own rusage."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command} failed with {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main(runs: int) -> None:
    """Print the median time and peak memory of each case and its ratio to the baseline."""
    results = {}
    for name, command in CASES.items():
        times, peaks = zip(*(measure(command) for _ in range(runs)), strict=True)
        results[name] = (statistics.median(times), max(peaks))
    base_time, base_rss = results["baseline: kubernetes client"]
    print(f"{'case':<38} {'median s':>9} {'peak MiB':>9} {'time ratio':>11}")
    for name, (seconds, rss) in results.items():
        print(f"{name:<38} {seconds:>9.3f} {rss:>9.1f} {seconds / base_time:>10.2f}x")
    print(f"peak RSS ratio, plugins list / baseline: {results['tinklet plugins list'][1] / base_rss:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
