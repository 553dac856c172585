"""A host that refuses privileged containers names the way out (issue 22).

The host is made, not hoped for: a private dockerd with plain runc (without the wrapper runtime
``scripts/setup`` gives the shared daemon) started under ``setpriv --bounding-set -wake_alarm``,
so that its runc cannot grant ``CAP_WAKE_ALARM`` and refuses every privileged container ("unable
to apply caps: operation not permitted"), as dockerd does on a host whose bounding set is short.
tinklet runs under the same ``setpriv``: it is on that host too. Podman cannot be made to
refuse (it trims privileged containers to its own bounding set): its test shows it runs and
is not warned about. The containerd counterpart lives with its plugin's tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_dockerd import PrivateDockerd, daemon_with_test_image

from tinklet_core.containers.privilege import refusal_advice, refused_privilege, startup_warning
from tinklet_core.runtime import Privilege

REPO = Path(__file__).resolve().parent.parent
HELLO = REPO / "examples" / "hello.yaml"
TINKLET = Path(sys.executable).with_name("tinklet")
PODMAN_TEST_CONF = "/etc/containers/tinklet-test.conf"
CHECK_PRIVILEGED = REPO / "scripts" / "check-privileged"
#: A capability nothing in dockerd, containerd or the test actions needs.
DROPPED = "wake_alarm"
ON_SHORT_HOST = ("setpriv", "--bounding-set", f"-{DROPPED}", "--")


def unique_agent() -> str:
    """An agent id of this test's own: on the shared engines another test's ``tinklet run`` is
    agent ``local`` too, and removes that agent's stopped containers (tests/test_local_runs.py)."""
    return f"short-host-{uuid.uuid4().hex[:8]}"


RUNC_REFUSAL = (
    "container failed to start: failed to create shim task: OCI runtime create failed: runc create "
    "failed: unable to start container process: unable to apply caps: operation not permitted: unknown"
)


@pytest.fixture(scope="module")
def short_host_dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    """A private dockerd with plain runc and ``CAP_WAKE_ALARM`` out of its bounding set."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed (util-linux)")
    root = tmp_path_factory.mktemp("short-host-dockerd")
    with daemon_with_test_image(root, wrapper_runtime=False, command_prefix=ON_SHORT_HOST) as daemon:
        yield daemon


def run_hello(daemon: PrivateDockerd, *options: str) -> subprocess.CompletedProcess[str]:
    """``tinklet --docker-host … [options] run examples/hello.yaml`` on the short host."""
    command = [*ON_SHORT_HOST, str(TINKLET), "--docker-host", daemon.url, *options, "run", str(HELLO)]
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=REPO)


def test_hello_on_a_host_refusing_privilege_says_what_to_pass(short_host_dockerd: PrivateDockerd) -> None:
    ran = run_hello(short_host_dockerd)
    assert ran.returncode != 0, ran.stdout
    first_lines = ran.stderr.splitlines()[:2]
    assert any("--action-privilege all-caps" in line for line in first_lines), ran.stderr
    assert ran.stderr.count("cannot run privileged containers") == 1, ran.stderr
    assert "CAP_WAKE_ALARM" in first_lines[0], ran.stderr
    failed = [line for line in ran.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, ran.stdout
    assert "unable to apply caps" in failed[0], failed[0]
    assert "--action-privilege all-caps" in failed[0] and "--action-privilege none" in failed[0], failed[0]
    logged = [line for line in ran.stderr.splitlines() if "FAILED" in line]
    assert logged and all("--action-privilege all-caps" in line for line in logged), ran.stderr


def test_hello_with_all_caps_succeeds_there(short_host_dockerd: PrivateDockerd) -> None:
    ran = run_hello(short_host_dockerd, "--action-privilege", "all-caps")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "workflow hello: SUCCESS" in ran.stdout
    assert "hello from a tinklet action" in ran.stderr
    assert "cannot run privileged containers" not in ran.stderr


def test_setups_check_warns_about_that_daemon_in_one_paragraph(short_host_dockerd: PrivateDockerd) -> None:
    checked = subprocess.run(
        ["bash", str(CHECK_PRIVILEGED), short_host_dockerd.url], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 1, checked.stderr
    paragraph = checked.stderr
    assert paragraph.startswith("WARNING: the dockerd at") and "unable to apply caps" in paragraph, paragraph
    assert "--action-privilege all-caps" in paragraph and "--action-privilege none" in paragraph
    assert "\n\n" not in paragraph.strip(), paragraph


def test_setups_check_passes_the_shared_daemon() -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    checked = subprocess.run(["bash", str(CHECK_PRIVILEGED)], capture_output=True, text=True, timeout=120)
    assert (checked.returncode, checked.stderr) == (0, "")


def test_the_shared_daemons_wrapper_runtime_is_not_warned_about() -> None:
    """The shared dockerd (``scripts/setup``'s wrapper runtime trims what the host lacks) runs
    privileged containers, also under the short bounding set: no warning, no failure."""
    if shutil.which("setpriv") is None or shutil.which("docker") is None:
        pytest.skip("setpriv or docker is not installed")
    command = [*ON_SHORT_HOST, str(TINKLET), "--identifier", unique_agent(), "run", str(HELLO)]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "cannot run privileged containers" not in ran.stderr


def test_podman_grants_privileged_within_the_short_bounding_set_and_does_not_warn() -> None:
    """Podman trims a privileged container's capabilities to its own bounding set: on the short
    host the demo runs as is, and no warning sends the user to ``all-caps`` for nothing."""
    if shutil.which("setpriv") is None or shutil.which("podman") is None:
        pytest.skip("setpriv or podman is not installed")
    agent = unique_agent()
    command = [*ON_SHORT_HOST, str(TINKLET), "--identifier", agent, "--runtime", "podman", "run", str(HELLO)]
    env = {**os.environ, "CONTAINERS_CONF": PODMAN_TEST_CONF}
    ran = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "cannot run privileged containers" not in ran.stderr


@pytest.mark.parametrize(
    "words",
    [
        RUNC_REFUSAL,
        "container failed to start: crun: capset: Operation not permitted: OCI permission denied",
        "container create failed: runc create failed: error creating device nodes: mknod /dev/sda: "
        "operation not permitted",
    ],
)
def test_a_runtimes_refusal_is_recognised(words: str) -> None:
    assert refused_privilege(words)


@pytest.mark.parametrize(
    "words",
    [
        "container failed to start: open /etc/passwd: operation not permitted",
        "container failed to start: unable to apply caps: invalid argument",
        "image pull failed: manifest unknown",
    ],
)
def test_other_failures_are_not_taken_for_a_refused_privilege(words: str) -> None:
    assert not refused_privilege(words)


def test_the_advice_names_the_way_out_from_each_privilege() -> None:
    assert "--action-privilege all-caps" in refusal_advice(Privilege.PRIVILEGED)
    assert "--action-privilege none" in refusal_advice(Privilege.PRIVILEGED)
    assert "--action-privilege none" in refusal_advice(Privilege.ALL_CAPS)
    assert "all-caps (" not in refusal_advice(Privilege.ALL_CAPS)


def test_the_start_warning_is_for_privileged_only() -> None:
    warning = startup_warning(Privilege.PRIVILEGED, ("SYS_RESOURCE",))
    assert warning is not None and "CAP_SYS_RESOURCE" in warning and "--action-privilege all-caps" in warning
    assert startup_warning(Privilege.ALL_CAPS, ("SYS_RESOURCE",)) is None
    assert startup_warning(Privilege.PRIVILEGED, ()) is None
