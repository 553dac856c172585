"""Wall time and memory of a chatty action on containerd: tinklet's containerd runtime against
``ctr run`` of the same container.

Both run ``yes LINE | head -c SIZE`` (64-byte lines) from the busybox test image on the same
containerd, each in a fresh process: tinklet through ``ContainerdRuntime.tinklet_execute_action``
(FIFOs → json log → line batches → an output function that only counts), ``ctr run --rm`` with
its stdout read from a pipe and its lines counted. Prints wall times side by side with their
ratio (medians of alternating runs: the machine is shared), and tinklet's RSS growth during
the action (peak RSS minus RSS before it; the largest of the runs).

Without ``--containerd-socket`` it starts a private containerd (as the tests do) and imports
the test image into it.

    .venv/bin/python bench/bench_containerd_output.py [--megabytes 100] [--containerd-socket PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from proc_memory import mib

TESTS = Path(__file__).resolve().parent.parent / "plugins" / "tinklet_containerd" / "tests"
IMAGE = "docker.io/tinklet/busybox:latest"
NAMESPACE = "tinkerbell"
TEXT = ("0123456789abcdef" * 4)[:63]  # each line: 63 characters and a newline


def command(size: int) -> list[str]:
    """A shell command printing ``size`` bytes of 64-byte lines."""
    return ["sh", "-c", f"yes {TEXT} | head -c {size}"]


def measure_tinklet(size: int, socket: str, data_root: str) -> dict[str, Any]:
    """The action through the containerd runtime, counting lines and bytes."""
    from tinklet_containerd import ContainerdRuntime

    from tinklet_core.model import Action
    from tinklet_core.runtime import ActionContext, RuntimeSettings

    options = {"containerd_socket": socket, "containerd_data_root": data_root}
    runtime = ContainerdRuntime(RuntimeSettings(options=options))
    counted = {"lines": 0, "bytes": 0}

    def output(lines: list[str]) -> None:
        counted["lines"] += len(lines)
        counted["bytes"] += sum(map(len, lines)) + len(lines)

    unique = uuid.uuid4().hex[:8]
    action = Action(
        f"bench-{unique}", "bench", f"bench-{unique}", "", "bench", IMAGE, command=tuple(command(size))
    )
    context = ActionContext(
        action, runtime.settings, None, threading.Event(), lambda _line: None, lambda _image: None,
        logging.getLogger("bench"), output_lines=output,
    )  # fmt: skip
    before = mib("VmRSS")
    started = time.monotonic()
    outcome = runtime.tinklet_execute_action(context)
    elapsed = time.monotonic() - started
    growth = mib("VmHWM") - before
    runtime.close()
    return {"state": outcome.state.value, "seconds": elapsed, "rss_growth_mb": growth, **counted}


def measure_ctr(size: int, socket: str) -> dict[str, Any]:
    """``ctr run --rm`` of the same container, its stdout counted as it arrives."""
    name = f"bench-ctr-{uuid.uuid4().hex[:8]}"
    argv = ["ctr", "--address", socket, "--namespace", NAMESPACE, "run", "--rm", IMAGE, name, *command(size)]
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert process.stdout is not None
    lines = total = 0
    while chunk := process.stdout.read1(256 * 1024):
        lines += chunk.count(b"\n")
        total += len(chunk)
    code = process.wait()
    elapsed = time.monotonic() - started
    state = "SUCCESS" if code == 0 else f"exit {code}"
    return {"state": state, "seconds": elapsed, "rss_growth_mb": float("nan"), "lines": lines, "bytes": total}


def run_child(mode: str, size: int, socket: str, data_root: str) -> dict[str, Any]:
    """Measure one mode in a fresh interpreter so its memory is its own."""
    argv = [sys.executable, __file__, "--child", mode, "--bytes", str(size), "--containerd-socket", socket,
            "--data-root", data_root]  # fmt: skip
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(size: int, socket: str, data_root: str, repeat: int) -> None:
    """Run both ``repeat`` times, alternating (the machine is shared: one run is noisy), and
    print the medians."""
    runs: dict[str, list[dict[str, Any]]] = {"tinklet": [], "ctr": []}
    for _ in range(repeat):
        for mode in ("ctr", "tinklet"):
            runs[mode].append(run_child(mode, size, socket, data_root))
    tinklet, ctr = (median_run(runs[mode]) for mode in ("tinklet", "ctr"))
    print(f"output: {size / 1e6:.0f} MB, {size // (len(TEXT) + 1)} lines of {len(TEXT)} characters; "
          f"medians of {repeat} alternating runs")  # fmt: skip
    print(f"{'':24}{'tinklet containerd':>20}{'ctr run':>14}{'ratio':>10}")
    ratio = tinklet["seconds"] / ctr["seconds"] if ctr["seconds"] else float("nan")
    print(f"{'wall time (s)':24}{tinklet['seconds']:>20.2f}{ctr['seconds']:>14.2f}{ratio:>9.2f}x")
    print(f"{'RSS growth (MiB)':24}{tinklet['rss_growth_mb']:>20.1f}{'-':>14}")
    for key in ("state", "lines", "bytes"):
        print(f"{key:24}{tinklet[key]!s:>20}{ctr[key]!s:>14}")
    print("wall times: tinklet " + " ".join(f"{r['seconds']:.2f}" for r in runs["tinklet"])
          + "; ctr " + " ".join(f"{r['seconds']:.2f}" for r in runs["ctr"]))  # fmt: skip


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (its other figures with it); the largest RSS growth."""
    ordered = sorted(runs, key=lambda run: run["seconds"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rss_growth_mb"] = max(run["rss_growth_mb"] for run in runs)
    return chosen


def main() -> None:
    """Parse arguments; as the parent, run both and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=100.0, help="output size in MB (10^6 bytes)")
    parser.add_argument("--bytes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--containerd-socket", help="a containerd holding the test image (default: a private one)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (medians are shown)")
    parser.add_argument("--data-root", default="", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("tinklet", "ctr"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.bytes or int(args.megabytes * 1_000_000)
    if args.child:
        measure = measure_ctr(size, args.containerd_socket) if args.child == "ctr" else None
        result = measure or measure_tinklet(size, args.containerd_socket, args.data_root)
        print(json.dumps(result))
        return
    if args.containerd_socket:
        compare(size, args.containerd_socket, args.data_root or "/var/lib/nerdctl", args.repeat)
        return
    sys.path.insert(0, str(TESTS))
    from containerd_support import PrivateContainerd, busybox_archive
    from tinklet_containerd.client import Containerd
    from tinklet_containerd.images import ImageStore, import_oci_archive

    daemon = PrivateContainerd()
    try:
        daemon.start()
        client = Containerd(daemon.socket, NAMESPACE)
        import_oci_archive(ImageStore(client), busybox_archive(daemon.root / "busybox.tar"), IMAGE)
        client.close()
        compare(size, daemon.socket, str(daemon.root / "nerdctl"), args.repeat)
    finally:
        daemon.destroy()


if __name__ == "__main__":
    main()
