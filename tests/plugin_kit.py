"""Helpers for tests that install throw-away plugins and run the real ``tinklet`` command."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

PROCESS = "tinklet_core.testing.process_runtime"


def write_module(site: Path, module: str, source: str) -> None:
    """A plugin module ``module`` in ``site`` (a directory put on PYTHONPATH)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))


def install_plugin(site: Path, distribution: str, entry: str, module: str, source: str) -> None:
    """A real installed distribution ``distribution`` 1.0 whose ``tinklet`` entry point ``entry``
    is ``module``: a dist-info directory and the module, both in ``site``."""
    write_module(site, module, source)
    dist = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[tinklet]\n{entry} = {module}\n")


def tinklet(
    *args: str, site: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tinklet_core ARGS`` with ``site`` on the path."""
    environ = {**os.environ, **(env or {})}
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "tinklet_core", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
    )


def run_on_a_terminal(
    args: list[str], site: Path | None = None, cwd: Path | None = None, timeout: float = 60
) -> tuple[int, str, str]:
    """Run ``python -m tinklet_core ARGS`` with its stdout on a pseudo-terminal; return the exit
    code, everything written to the terminal, and stderr."""
    main, child = pty.openpty()
    environ = dict(os.environ)
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "tinklet_core", *args],
        stdout=child, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=environ, cwd=cwd,
    )  # fmt: skip
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(main)
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    return process.wait(timeout=10), b"".join(chunks).decode(), errors


def assert_one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    """Exit 2, and the last line of stderr is ``tinklet: error: …`` containing ``text``."""
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("tinklet: error: "), result.stderr
    assert text in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def warnings_in(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The WARNING lines tinklet logged."""
    return [line for line in result.stderr.splitlines() if " WARNING " in line]


def write_workflow(path: Path, *actions: dict[str, object]) -> Path:
    """A one-task workflow file with ``actions``."""
    path.write_text(yaml.safe_dump({"name": "local", "tasks": [{"name": "t", "actions": list(actions)}]}))
    return path
