"""A credential helper is an outside program: its output is bounded and shown escaped.

A helper that prints 300 MB used to take tinklet to ~929 MB RSS before its 10 s timeout; now
tinklet reads at most :data:`HELPER_OUTPUT_LIMIT` bytes, stops the helper and warns naming it.
A failing helper's words reach the WARNING line with control characters escaped.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tinklet_core.registry_auth import HELPER_OUTPUT_LIMIT, ConfiguredRegistryCredentials

REGISTRY = "r.example"


def _helper(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    program = directory / f"docker-credential-{name}"
    program.write_text("#!/bin/sh\n" + body)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)


def _config(tmp_path: Path, helper: str) -> Path:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {REGISTRY: helper}}))
    return config


# The probe's peak is VmHWM, its own address space's high-water mark: not getrusage's ru_maxrss,
# which Linux carries across exec from the process that started it (a pytest worker of 180 MiB
# made a 40 MiB probe read as 181 MiB).
PROBE = """
import logging, sys
from pathlib import Path
from tinklet_core.registry_auth import ConfiguredRegistryCredentials
logging.basicConfig(level=logging.WARNING)
found = ConfiguredRegistryCredentials((), Path(sys.argv[1])).tinklet_registry_credentials("r.example")
status = Path("/proc/self/status").read_text().splitlines()
peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(found is None, peak_kib // 1024)
"""


def test_a_helper_printing_hundreds_of_megabytes_is_stopped_and_named(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "flood", "head -c 300000000 /dev/zero | tr '\\0' x\n")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(_config(tmp_path, "flood"))],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    no_login, peak_mib = done.stdout.split()
    assert no_login == "True"
    assert int(peak_mib) < 150, f"peak RSS {peak_mib} MiB while reading the helper"
    assert "docker-credential-flood failed for r.example: it printed more than" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_helper_within_the_limit_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    answer = json.dumps({"ServerURL": REGISTRY, "Username": "u", "Secret": "s" * (HELPER_OUTPUT_LIMIT // 2)})
    _helper(bin_dir, "big", f"cat >/dev/null; printf '%s' '{answer}'\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    found = ConfiguredRegistryCredentials((), _config(tmp_path, "big")).tinklet_registry_credentials(REGISTRY)
    assert found is not None and found.username == "u"


def test_a_failing_helpers_words_are_escaped_in_the_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bin_dir = tmp_path / "bin"
    _helper(
        bin_dir,
        "loud",
        "printf 'bad \\033[2J\\033[1;1H\\007 login\\177 \\302\\233 end\\342\\200\\250x'; exit 3\n",
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with caplog.at_level(logging.WARNING):
        ConfiguredRegistryCredentials((), _config(tmp_path, "loud")).tinklet_registry_credentials(REGISTRY)
    [message] = [r.getMessage() for r in caplog.records if "docker-credential-loud" in r.getMessage()]
    assert "\\x1b[2J" in message and "\\x07" in message and "\\x7f" in message and "\\x9b" in message
    assert "\u2028" not in message  # a line separator is whitespace: it became a space
    assert all(ch.isprintable() for ch in message)
