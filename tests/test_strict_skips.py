"""In CI a missing engine is a failure, not a skip (tinklet's pytest plugin, ``tinklet_strict_skips``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = """
import pytest
from tinklet_core.testing.pytest_plugin import not_applicable

def test_engine_missing():
    pytest.skip("podman is not installed (scripts/setup installs it)")

@pytest.mark.skipif(True, reason="the docker CLI is not installed")
def test_tool_missing():
    pass

def test_opt_in_cluster():
    pytest.skip("TINKLET_TEST_KUBECONFIG does not name a kubeconfig")

def test_feature_the_runtime_lacks():
    not_applicable("kube does not mount host paths by default")
"""


def run(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\ntinklet_strict_skips = true\n")
    (tmp_path / "test_engines.py").write_text(TESTS)
    env = {**os.environ, "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_in_ci_a_missing_engine_fails(tmp_path: Path) -> None:
    result = run(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 2 skipped, 1 error" in result.stdout  # a skipif fails in setup: an error
    assert (
        "skipped in CI, where every engine and tool must be present: Skipped: podman is not installed"
        in result.stdout
    )
    assert "ERROR test_engines.py::test_tool_missing" in result.stdout


def test_outside_ci_it_is_a_skip(tmp_path: Path) -> None:
    result = run(tmp_path, "")
    assert result.returncode == 0, result.stdout
    assert "4 skipped" in result.stdout
