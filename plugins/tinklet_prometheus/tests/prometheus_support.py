"""Helpers for the exporter's tests: a worker process with metrics, HTTP GETs, metric values."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

PROCESS = "tinklet_core.testing.process_runtime"
HERE = Path(__file__).parent


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_worker(tink: str, agent: str, metrics: int | str, *extra: str) -> subprocess.Popen[str]:
    """``tinklet`` on the process runtime for ``agent`` at ``tink``, with metrics (a loopback
    port, or a whole ``--metrics-address``) and the pull reporter plugin."""
    address = metrics if isinstance(metrics, str) else f"127.0.0.1:{metrics}"
    command = [
        sys.executable, "-m", "tinklet_core", "-p", PROCESS, "-p", "pull_reporter",
        "--runtime", "process", "--protocol", "v2", "--tink", tink, "--identifier", agent,
        "--max-backoff", "0.3", "--metrics-address", address, *extra,
    ]  # fmt: skip
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    environ = {**os.environ, "PYTHONPATH": path}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ)


def stop_worker(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, then the exit code and everything it printed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    return process.returncode, output


def get(url: str) -> tuple[int, str]:
    """``(status, body)`` of a GET; ``(0, reason)`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels`` in exposition ``text``."""
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and labels.items() <= item.labels.items():
                return float(item.value)
    return None


def scrape(base: str) -> str:
    """The exposition text at ``base``/metrics, or an empty string while nothing serves it."""
    status, body = get(f"{base}/metrics")
    return body if status == 200 else ""
