"""A docker ``config.json`` of the wrong shape is the same warning for every container runtime.

docker-py reads ``~/.docker/config.json`` by itself and trusts its shape: ``[]``,
``{"auths": "x"}`` or a numeric ``auth`` used to end the Docker runtime with exit 70 (an
"unexpected AttributeError"), while Podman went on. The core's reader warns, naming the file, and
the Docker adapter never lets docker-py read it; the action runs on either runtime.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from test_registry_pull import LOCAL_IMAGE, _docker_ready, isolated_environment, needs_podman

pytestmark = pytest.mark.skipif(_docker_ready() is not None, reason=_docker_ready() or "")

SHAPES = {
    "a list": ("[]", "not a JSON object"),
    "auths a string": ('{"auths": "x"}', "ignoring auths in docker config"),
    "auth a number": ('{"auths": {"r.example": {"auth": 5}}}', "ignoring unreadable login for r.example"),
    "proxies a list": ('{"proxies": []}', None),
    "headers a string": ('{"HttpHeaders": "x"}', None),
}
RUNTIMES = ["docker", pytest.param("podman", marks=needs_podman)]


def _run(home: Path, runtime: str) -> subprocess.CompletedProcess[str]:
    workflow = home.parent / "workflow.yaml"
    workflow.write_text(
        "version: '0.1'\nname: shapes\ntasks:\n  - name: t\n    actions:\n      - name: a\n"
        f"        image: {LOCAL_IMAGE}\n        timeout: 60\n        command: [echo, shaped]\n"
    )
    identifier = f"docker-config-test-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "tinklet_core", "--identifier", identifier, "run", str(workflow)]
    return subprocess.run(
        [*command, "--runtime", runtime],
        env=isolated_environment(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _warnings(stderr: str) -> list[str]:
    return [
        line.split(": ", 1)[1]
        for line in stderr.splitlines()
        if " WARNING " in line and "tinklet.registry:" in line
    ]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_docker_config_of_the_wrong_shape_is_a_warning_and_the_action_runs(
    tmp_path: Path, shape: str, runtime: str
) -> None:
    home = tmp_path / "home"
    config = home / ".docker" / "config.json"
    config.parent.mkdir(parents=True)
    content, expected = SHAPES[shape]
    config.write_text(content)
    done = _run(home, runtime)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS  t/a" in done.stdout
    assert "unexpected" not in done.stderr
    if expected is not None:
        assert any(expected in line and str(config) in line for line in _warnings(done.stderr)), done.stderr


def test_every_runtime_gives_the_same_warning(tmp_path: Path) -> None:
    if needs_podman.args[0]:
        pytest.skip(needs_podman.kwargs["reason"])
    seen = {}
    for runtime in ("docker", "podman"):
        home = tmp_path / runtime / "home"
        (home / ".docker").mkdir(parents=True)
        (home / ".docker" / "config.json").write_text(json.dumps({"auths": "x", "credHelpers": []}))
        done = _run(home, runtime)
        assert done.returncode == 0, done.stderr
        seen[runtime] = [line.replace(str(home), "HOME") for line in _warnings(done.stderr)]
    assert seen["docker"] == seen["podman"]
    assert len(seen["docker"]) == 2  # once each, not once per read
