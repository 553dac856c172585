"""The behaviour suite, run through tinklet's pytest plugin (``pytest --tinklet-runtime``), fails
runtimes that break the contract: one that does not kill its action on shutdown, one that ignores
the pull policy, one that drops registry credentials. Each is the plugin template under
``examples/`` with one deliberate bug; the unbroken template passes the same cases."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).parent.parent / "examples" / "tinklet-dockercli"
BROKEN_LABEL = "tinklet.test-broken-runtime=1"

BROKEN = f"""
from tinklet_core.hookspecs import hookimpl
from tinklet_core.runtime import RuntimeSpec
from tinklet_dockercli.runtime import DockerCliRuntime


class Template(DockerCliRuntime):
    def _flags(self, action):
        return ["--label", {BROKEN_LABEL!r}, *super()._flags(action)]


class KillsOnlyTheClient(Template):
    def _stop(self, name, process):
        process.kill()


class IgnoresPullPolicy(Template):
    def _pull_flag(self):
        return "--pull=missing"


class DropsCredentials(Template):
    def _login(self, context):
        return None


@hookimpl
def tinklet_runtimes():
    return [
        RuntimeSpec("template", Template),
        RuntimeSpec("kills-only-the-client", KillsOnlyTheClient),
        RuntimeSpec("ignores-pull-policy", IgnoresPullPolicy),
        RuntimeSpec("drops-credentials", DropsCredentials),
    ]
"""

CASES = "test_nothing_survives_shutdown or test_pull_never_does_not_pull or test_a_missing_image_is_pulled"


def run_suite(tmp_path: Path, runtime: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tinklet_broken.py").write_text(textwrap.dedent(BROKEN))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TEMPLATE)])}
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", "-k", CASES,
        "--tinklet-runtime", runtime, "--tinklet-plugin", "tinklet_broken",
        "--tinklet-leftovers", "tinklet_dockercli.testing:leftovers",
    ]  # fmt: skip
    try:
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    finally:
        names = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={BROKEN_LABEL}"], capture_output=True, text=True
        ).stdout.split()
        if names:
            subprocess.run(["docker", "rm", "--force", *names], capture_output=True)


def failed(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {
        line.split("::")[-1].split()[0]
        for line in result.stdout.splitlines()
        if line.startswith(("FAILED", "ERROR")) and "::" in line
    }


def test_the_unbroken_template_passes(tmp_path: Path) -> None:
    result = run_suite(tmp_path, "template")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 passed" in result.stdout


@pytest.mark.parametrize(
    ("runtime", "caught_by"),
    [
        ("kills-only-the-client", "test_nothing_survives_shutdown"),
        ("ignores-pull-policy", "test_pull_never_does_not_pull"),
        ("drops-credentials", "test_a_missing_image_is_pulled_with_the_registrys_credentials"),
    ],
)
def test_a_broken_runtime_fails_the_suite(tmp_path: Path, runtime: str, caught_by: str) -> None:
    result = run_suite(tmp_path, runtime)
    assert result.returncode == 1, result.stdout[-3000:]
    assert failed(result) == {caught_by}, result.stdout[-3000:]
