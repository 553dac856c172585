"""The metrics endpoint under a hostile neighbour: the worker's RSS under abuse against idle.

One worker (process runtime, ``--log-format json``, ``--metrics-address`` on loopback) idles on
the in-process test Tink server ("no work now"). The bench then measures, in one run:

1. idle: the worker's RSS and threads once it serves ``/metrics``;
2. abuse, all at once (the issue's reproduction): ``--senders`` connections each sending
   ``--head-mb`` MB of a request head that never ends (60 KB header lines, in 4 KiB pieces, with
   a 4 KiB send buffer so that bytes sent are close to bytes the worker's side took), and
   ``--silent`` connections that say nothing; the worker's peak RSS and threads while it lasts,
   whether a scrape is answered during it, how many bytes each sender got in before the cut-off,
   and how many silent connections the server closed within ``--idle-wait`` seconds;
3. after: ``--resets`` clients that send a request and reset (SO_LINGER 0) before the answer,
   then RSS once the abuse is over, and what the log holds (tracebacks, lines not JSON).

RSS is read from ``/proc/PID/status`` (VmRSS, VmHWM for the peak) every 50 ms.

    .venv/bin/python bench/bench_metrics_abuse.py [--senders 60] [--head-mb 6] [--silent 300] [--resets 50]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from proc_memory import status_kib

from tinklet_core.testing.sockets import closed_by_peer, reset
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

HEAD_START = b"GET /metrics HTTP/1.1\r\nHost: victim\r\n"
HEADER_LINE = b"X-Filler: " + b"a" * 60_000 + b"\r\n"
PIECE = 4096


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> int:
    """The status of GET /metrics (0 when it fails)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            response.read()
            return int(response.status)
    except OSError:
        return 0


def send_head_forever(port: int, limit: int, accepted: list[int]) -> None:
    """Send up to ``limit`` bytes of a head that never ends; record how many went out."""
    sent = 0
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIECE)  # bytes sent ~ bytes taken
            sock.settimeout(30)
            sock.connect(("127.0.0.1", port))
            sock.sendall(HEAD_START)
            while sent < limit:
                for start in range(0, len(HEADER_LINE), PIECE):
                    sock.sendall(HEADER_LINE[start : start + PIECE])
                    sent += min(PIECE, len(HEADER_LINE) - start)
                    if select.select([sock], [], [], 0)[0] and not sock.recv(4096):
                        raise ConnectionResetError
    except OSError:
        pass
    accepted.append(sent)


def reset_after_asking(port: int) -> None:
    """Send a whole request, then close with RST before the answer is read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(HEAD_START + b"\r\n")
        reset(sock)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--senders", type=int, default=60)
    parser.add_argument("--head-mb", type=float, default=6.0)
    parser.add_argument("--silent", type=int, default=300)
    parser.add_argument("--idle-wait", type=float, default=10.0)
    parser.add_argument("--resets", type=int, default=50)
    args = parser.parse_args()

    workflow = {
        "name": "w",
        "tasks": [{"name": "t", "actions": [{"name": "a", "image": "i", "command": ["true"]}]}],
    }
    port = free_port()
    with TinkServer([parse_workflow(workflow, agent_id="someone-else")], "someone-else") as tink:
        log_path = Path(tempfile.mkstemp(prefix="bench-metrics-", suffix=".log")[1])
        with log_path.open("w") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "tinklet_core", "-p", "tinklet_core.testing.process_runtime",
                 "--runtime", "process", "--protocol", "v2", "--tink", tink.address, "--identifier", "bench",
                 "--max-backoff", "1", "--log-format", "json", "--metrics-address", f"127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while scrape(port) != 200:
                if time.monotonic() > deadline or worker.poll() is not None:
                    sys.exit(f"the worker's metrics never answered:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            time.sleep(1.0)
            idle = status_kib(worker.pid)

            peak = dict(idle)
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.is_set():
                    try:
                        now = status_kib(worker.pid)
                    except OSError:
                        return
                    peak["VmRSS"] = max(peak["VmRSS"], now["VmRSS"])
                    peak["Threads"] = max(peak["Threads"], now["Threads"])
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            began = time.monotonic()
            silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(args.silent)]
            accepted: list[int] = []
            limit = int(args.head_mb * 1024 * 1024)
            senders = [
                threading.Thread(target=send_head_forever, args=(port, limit, accepted), daemon=True)
                for _ in range(args.senders)
            ]
            for sender in senders:
                sender.start()
            during = scrape(port)
            for sender in senders:
                sender.join(120)
            senders_done = time.monotonic() - began
            time.sleep(max(0.0, args.idle_wait - (time.monotonic() - began)))
            still_open = sum(not closed_by_peer(sock) for sock in silent)
            for sock in silent:
                sock.close()
            for _ in range(args.resets):
                reset_after_asking(port)
            after_abuse = scrape(port)
            sampling.set()
            sampler.join()
            time.sleep(1.0)
            after = status_kib(worker.pid)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    not_json = 0
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json += 1
    tracebacks = sum("Traceback" in line for line in lines)
    os.unlink(log_path)

    def mb(kib: int) -> str:
        return f"{kib / 1024:7.1f} MB"

    print(f"abuse: {args.senders} connections x {args.head_mb:g} MB of unfinished headers, "
          f"{args.silent} silent connections")  # fmt: skip
    print(f"{'':28}{'idle':>12}{'under abuse':>14}{'ratio':>8}{'after':>12}")
    print(f"{'worker RSS':28}{mb(idle['VmRSS']):>12}{mb(peak['VmRSS']):>14}"
          f"{peak['VmRSS'] / idle['VmRSS']:>7.2f}x{mb(after['VmRSS']):>12}")  # fmt: skip
    print(f"{'worker threads':28}{idle['Threads']:>12}{peak['Threads']:>14}"
          f"{peak['Threads'] / idle['Threads']:>7.2f}x{after['Threads']:>12}")  # fmt: skip
    print(
        f"bytes each sender got in before the cut-off: max {max(accepted, default=0):,}, "
        f"min {min(accepted, default=0):,} (of {limit:,} tried); all cut off after {senders_done:.1f}s"
    )
    print(f"silent connections still open after {args.idle_wait:g}s: {still_open} of {args.silent}")
    print(f"GET /metrics during the abuse: {during or 'no answer'}; after it: {after_abuse or 'no answer'}")
    print(f"log after {args.resets} resets: {len(lines)} lines, {not_json} not JSON, {tracebacks} tracebacks")


if __name__ == "__main__":
    main()
