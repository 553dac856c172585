"""The self-contained executable against the virtualenv's tinklet: start-up, memory and size.

Measures, median of N runs each, in one session so the figures are comparable:
- ``tinklet version`` and ``tinklet plugins list`` started from the executable (PyInstaller
  onefile: it unpacks its libraries to a temporary directory at every start) and from the
  virtualenv's ``tinklet`` (the baseline);
- the executable's size, what it unpacks at each start (RAM where /tmp is a tmpfs, as on HookOS
  and CaptainOS), and the worker image's size when ``--image`` names one.

Run: ``.venv/bin/python bench/bench_executable.py [--runs N] [--executable PATH] [--image TAG]``
(without ``--executable`` it builds one with ``scripts/build-executable`` first and says how long
that took).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_TINKLET = Path(sys.executable).parent / "tinklet"
#: PyInstaller CArchive entry kinds that stay inside the executable (run from memory).
_KEPT_INSIDE = {"m", "M", "s", "o"}


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB, the largest of the process and its children) of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed")
    return elapsed, usage.ru_maxrss / 1024


def unpacked_bytes(executable: Path) -> int:
    """What the onefile executable writes to its temporary directory at each start."""
    from PyInstaller.archive.readers import CArchiveReader

    toc = CArchiveReader(str(executable)).toc
    return sum(entry[2] for entry in toc.values() if entry[4] not in _KEPT_INSIDE)


def build() -> tuple[Path, float]:
    out = Path(tempfile.mkdtemp(prefix="tinklet-bench-"))
    started = time.perf_counter()
    subprocess.run(["bash", str(ROOT / "scripts/build-executable"), str(out)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return out / "tinklet", time.perf_counter() - started


def main() -> None:
    """Print start-up and peak memory side by side with the virtualenv's, and the sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--executable", type=Path)
    parser.add_argument("--image")
    args = parser.parse_args()
    executable = args.executable
    if executable is None:
        executable, seconds = build()
        print(f"scripts/build-executable: {seconds:.1f} s")
    header = ("command", "venv s", "exe s", "ratio", "venv MiB", "exe MiB", "ratio")
    print("{:<22} {:>8} {:>8} {:>7} {:>9} {:>8} {:>7}".format(*header))
    for words in (["version"], ["plugins", "list"]):
        venv = [measure([str(VENV_TINKLET), *words]) for _ in range(args.runs)]
        frozen = [measure([str(executable), *words]) for _ in range(args.runs)]
        venv_s, exe_s = statistics.median(t for t, _ in venv), statistics.median(t for t, _ in frozen)
        venv_m, exe_m = max(m for _, m in venv), max(m for _, m in frozen)
        print(f"{' '.join(words):<22} {venv_s:>8.3f} {exe_s:>8.3f} {exe_s / venv_s:>6.2f}x "
              f"{venv_m:>9.1f} {exe_m:>8.1f} {exe_m / venv_m:>6.2f}x")  # fmt: skip
    size = executable.stat().st_size
    print(f"executable: {size / 1e6:.1f} MB on disk, unpacks {unpacked_bytes(executable) / 1e6:.1f} MB "
          "to its temporary directory at each start")  # fmt: skip
    if args.image:
        image_size = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", args.image],
                                    capture_output=True, text=True, check=True).stdout  # fmt: skip
        print(f"image {args.image}: {int(image_size) / 1e6:.1f} MB uncompressed (limit 100 MB)")


if __name__ == "__main__":
    main()
