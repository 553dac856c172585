"""Peak memory and wall time of streaming a large action output through the docker runtime.

Runs the same container twice, each time in a fresh Python process so peak RSS is measured
separately: once through the tinklet docker runtime (attach stream -> LineSplitter -> an output
function that only counts), once buffered the way docker-py's ``containers.run()`` returns
output by default. Prints both side by side with the buffered/streamed ratios.

    .venv/bin/python bench/bench_docker_output.py [--megabytes 100] [--docker-host URL]
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
from typing import Any

from proc_memory import mib

IMAGE = "tinklet/busybox:latest"
TEXT = ("0123456789abcdef" * 4)[:63]  # each line: 63 characters and a newline
BENCH_LABEL = "tinklet.bench"


def command(size: int) -> list[str]:
    """A shell command printing ``size`` bytes of 64-byte lines."""
    return ["sh", "-c", f"yes {TEXT} | head -c {size}"]


def measure_plugin(size: int, url: str) -> dict[str, Any]:
    """Stream through DockerRuntime.tinklet_execute_action, counting lines and bytes."""
    from tinklet_docker import DockerRuntime

    from tinklet_core.model import Action
    from tinklet_core.runtime import ActionContext, RuntimeSettings

    runtime = DockerRuntime(RuntimeSettings(options={"docker_host": url}))
    counted = {"lines": 0, "bytes": 0}

    def output(line: str) -> None:
        counted["lines"] += 1
        counted["bytes"] += len(line) + 1

    unique = uuid.uuid4().hex[:8]
    action = Action(
        f"bench-{unique}", "bench", f"bench-{unique}", "", "bench", IMAGE, command=tuple(command(size))
    )
    context = ActionContext(
        action,
        runtime.settings,
        None,
        threading.Event(),
        output,
        lambda image: None,
        logging.getLogger("bench"),
    )
    started = time.monotonic()
    outcome = runtime.tinklet_execute_action(context)
    elapsed = time.monotonic() - started
    runtime.close()
    return {"state": outcome.state.value, "seconds": elapsed, **counted}


def measure_buffered(size: int, url: str) -> dict[str, Any]:
    """docker-py's default: ``containers.run()`` returns the whole output as one bytes object."""
    import docker

    client = docker.DockerClient(base_url=url, timeout=600)
    started = time.monotonic()
    output = client.containers.run(IMAGE, command(size), remove=True, labels={BENCH_LABEL: "buffered"})
    lines = len(output.decode().splitlines())
    elapsed = time.monotonic() - started
    client.close()
    return {"state": "SUCCESS", "seconds": elapsed, "lines": lines, "bytes": len(output)}


def child(mode: str, size: int, url: str) -> None:
    """Measure one mode in this process and print the figures as JSON."""
    measure = measure_plugin if mode == "streamed" else measure_buffered
    result = measure(size, url)
    result["peak_rss_mb"] = mib("VmHWM")
    print(json.dumps(result))


def run_child(mode: str, size: int, url: str) -> dict[str, Any]:
    """Run one mode in a fresh interpreter so its peak RSS is its own."""
    argv = [sys.executable, __file__, "--child", mode, "--bytes", str(size), "--docker-host", url]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Parse arguments; as the parent run both modes and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=100.0, help="output size in MB (10^6 bytes)")
    parser.add_argument("--bytes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--docker-host", default="unix:///var/run/docker.sock")
    parser.add_argument("--child", choices=("streamed", "buffered"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.bytes or int(args.megabytes * 1_000_000)
    if args.child:
        child(args.child, size, args.docker_host)
        return
    streamed = run_child("streamed", size, args.docker_host)
    buffered = run_child("buffered", size, args.docker_host)
    print(f"output: {size / 1e6:.0f} MB, {size // (len(TEXT) + 1)} lines of {len(TEXT)} characters")
    print(f"{'':28}{'tinklet (streamed)':>20}{'containers.run()':>20}{'ratio':>10}")
    for key, label in (("peak_rss_mb", "peak RSS (MiB)"), ("seconds", "wall time (s)")):
        ratio = buffered[key] / streamed[key] if streamed[key] else float("nan")
        print(f"{label:28}{streamed[key]:>20.1f}{buffered[key]:>20.1f}{ratio:>9.1f}x")
    for key in ("state", "lines", "bytes"):
        print(f"{key:28}{streamed[key]!s:>20}{buffered[key]!s:>20}")


if __name__ == "__main__":
    main()
