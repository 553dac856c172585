"""The worker image and the self-contained executable, end to end, the way Tinkerbell starts them.

- HookOS: ``docker run`` of the image exactly as hook-bootkit does it (privileged, host network,
  env only, no arguments, the host's docker socket and ``/worker`` bound): actions run as sibling
  containers on the host's dockerd, the action's own ``/tinkerbell/failure-reason`` and
  ``failure-message`` reach the FAILED report, ``docker stop`` is clean.
- CaptainOS: the executable on a Debian root file system without Python (the mmdebstrap root fs
  of the image's base) lists its plugins, and runs the workflow with the tink agent's command line.

The executable and the image are built once per session (``scripts/build-executable``,
``scripts/build-image``); ``TINKLET_TEST_EXECUTABLE`` / ``TINKLET_TEST_IMAGE`` reuse ones built
before (a CI step).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin_kit import install_plugin, write_module
from tinklet_core.model import State
from tinklet_core.testing.certs import make_test_pki
from tinklet_core.testing.tink_server import ServerTls, TinkServer
from tinklet_core.workflow import parse_workflow

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins/tinklet_containerd/tests"))
from containerd_support import PrivateContainerd, containerd_missing, containerd_with_test_image

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = "tinklet/busybox:latest"
WORKER_DIR = Path("/worker")  # HookOS binds it at the same path on both sides
HOOK_BINDS = ("-v", "/worker:/worker", "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", "/dev:/dev")
BUNDLED = (
    "tinklet", "tinklet-docker", "tinklet-podman", "tinklet-kube", "tinklet-prometheus", "tinklet-containerd",
)  # fmt: skip

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (dockerd, chroot, mmdebstrap)")


def workflow(agent: str) -> dict[str, object]:
    """R/S, R/S, R/FAILED: the last action writes its own reason and message, then fails."""
    failing = (
        "echo DiskNotFound > /tinkerbell/failure-reason; "
        "echo 'no disk at /dev/sdz' > /tinkerbell/failure-message; exit 3"
    )
    actions = [
        {"name": "one", "image": BUSYBOX, "command": ["sh", "-c", "echo one"]},
        {"name": "two", "image": BUSYBOX, "command": ["sh", "-c", "echo two"]},
        {"name": "three", "image": BUSYBOX, "command": ["sh", "-c", failing]},
    ]
    return {"name": f"wf-{agent}", "tasks": [{"name": "t", "actions": actions}]}


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def action_containers(agent: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=tinklet.agent={agent}").stdout.split()


@pytest.fixture(scope="session")
def executable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("TINKLET_TEST_EXECUTABLE")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("executable")
    build = ["bash", str(ROOT / "scripts/build-executable"), str(out)]
    subprocess.run(build, check=True, capture_output=True)
    return out / "tinklet"


@pytest.fixture(scope="session")
def image(executable: Path) -> Iterator[str]:
    given = os.environ.get("TINKLET_TEST_IMAGE")
    if given:
        yield given
        return
    tag = f"tinklet/worker:test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["bash", str(ROOT / "scripts/build-image"), tag],
        env={**os.environ, "TINKLET_EXECUTABLE": str(executable)}, check=True, capture_output=True,
    )  # fmt: skip
    yield tag
    docker("rmi", tag, check=False)


@pytest.fixture(scope="session")
def debian_root(tmp_path_factory: pytest.TempPathFactory, image: str) -> Path:
    """The image's base as a directory: Debian's libc6, libgcc-s1 and zlib1g, no Python."""
    base = docker("image", "inspect", "-f", "{{index .Config.Labels \"org.opencontainers.image.title\"}}",
                  image).stdout  # fmt: skip
    assert base.strip() == "tinklet"
    root = tmp_path_factory.mktemp("debian-root")
    container = docker("create", image).stdout.strip()
    try:
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        assert export.stdout is not None
        with tarfile.open(fileobj=export.stdout, mode="r|") as archive:
            archive.extractall(root, filter="tar")
        export.wait(60)
    finally:
        docker("rm", "-f", container, check=False)
    (root / "usr/bin/tinklet").unlink()
    (root / "usr/bin/tink-agent").unlink()
    return root


@pytest.fixture()
def worker_dir() -> Path:
    WORKER_DIR.mkdir(mode=0o700, exist_ok=True)
    return WORKER_DIR


def hook_bootkit_env(address: str, agent: str, **extra: str) -> list[str]:
    """hook-bootkit's -e list: every variable set, empty when the cmdline had no value."""
    values = {"DOCKER_REGISTRY": "", "REGISTRY_USERNAME": "", "REGISTRY_PASSWORD": "",
              "TINKERBELL_GRPC_AUTHORITY": address, "TINKERBELL_TLS": "false",
              "TINKERBELL_INSECURE_TLS": "false", "WORKER_ID": agent, "ID": agent,
              "HTTP_PROXY": "", "HTTPS_PROXY": "", "NO_PROXY": "", **extra}  # fmt: skip
    return [arg for key, value in values.items() for arg in ("-e", f"{key}={value}")]


def assert_failed_with_the_actions_words(server: TinkServer) -> None:
    assert server.states_of("t/one") == [State.RUNNING, State.SUCCESS]
    assert server.states_of("t/two") == [State.RUNNING, State.SUCCESS]
    assert server.states_of("t/three") == [State.RUNNING, State.FAILED]
    [failed] = [r for r in server.reports if r.state is State.FAILED]
    assert failed.message.startswith("DiskNotFound: no disk at /dev/sdz"), failed.message


def run_worker_container(server: TinkServer, name: str, run_args: list[str], agent: str) -> str:
    """Start the worker container, wait for the workflow's FAILED, ``docker stop`` it; its logs."""
    try:
        docker("run", "-d", "--name", name, *run_args)
        finished = server.wait_until(lambda: State.FAILED in server.states_of("t/three"), timeout=90)
        logs = docker("logs", name, check=False)
        assert finished, logs.stdout + logs.stderr
        started = time.monotonic()
        docker("stop", name, timeout=30)
        stopped_in = time.monotonic() - started
        code = docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
        logs = docker("logs", name, check=False)
        assert code == "0", logs.stderr
        assert stopped_in < 10, f"docker stop took {stopped_in:.1f} s"
        assert action_containers(agent) == []
        return logs.stdout + logs.stderr
    finally:
        docker("rm", "-f", name, check=False)


def test_the_image_is_small_and_labelled(image: str) -> None:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    assert size <= 100 * 1000 * 1000, f"{size / 1e6:.0f} MB"
    labels = docker("image", "inspect", "-f", "{{json .Config.Labels}}", image).stdout
    for key in ("version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}" in labels
    entrypoint = docker("image", "inspect", "-f", "{{json .Config.Entrypoint}}", image).stdout
    assert entrypoint.strip() == '["/usr/bin/tinklet"]'


def test_started_as_hook_bootkit_starts_tink_worker(image: str, worker_dir: Path) -> None:
    agent = f"hook-{uuid.uuid4().hex[:8]}"
    with TinkServer([parse_workflow(workflow(agent), agent_id=agent)], agent) as server:
        env = hook_bootkit_env(server.address, agent)
        run = ["--privileged", "--network", "host", *HOOK_BINDS, *env, image]
        output = run_worker_container(server, f"tink-worker-{agent}", run, agent)
        assert_failed_with_the_actions_words(server)
    assert "not shared with the host" not in output
    assert list(worker_dir.glob("tinklet-action-*")) == [], "each action's directory is removed"
    assert worker_dir.stat().st_mode & 0o777 == 0o700


def test_a_state_dir_the_host_cannot_see_is_said_at_start(image: str) -> None:
    result = docker("run", "--rm", "-e", "TINKLET_STATE_DIR=/var/lib/tinklet", image, "plugins", "list")
    assert "state dir /var/lib/tinklet is not shared with the host" in result.stderr


def test_the_executable_on_debian_without_python_lists_its_plugins(
    debian_root: Path, executable: Path
) -> None:
    assert not [p for p in debian_root.rglob("python*")], "the root fs must have no Python"
    target = debian_root / "usr/bin/tink-agent"
    shutil.copy2(executable, target)
    try:
        command = ["chroot", str(debian_root), "/usr/bin/tink-agent", "plugins", "list", "--json"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        target.unlink()
    assert result.returncode == 0, result.stderr
    plugins = {p["distribution"]: p["version"] for p in json.loads(result.stdout)["plugins"]}
    for distribution in BUNDLED:
        assert plugins.get(distribution), f"{distribution} missing: {plugins}"
    assert json.loads(result.stdout)["failures"] == []


def test_the_executable_runs_the_workflow_with_the_tink_agents_command_line(
    image: str, executable: Path, worker_dir: Path
) -> None:
    """CaptainOS runs /tink-agent under systemd with the agent's flags; here on the image's
    Python-less base (the executable bound in), against the host's dockerd."""
    agent = f"captain-{uuid.uuid4().hex[:8]}"
    base = f"tinklet/base-debian:{_suite()}"  # what scripts/build-image made and imported
    with TinkServer([parse_workflow(workflow(agent), agent_id=agent)], agent) as server:
        line = ["/tink-agent", "-runtime", "docker", "-transport", "grpc", "-grpc-server", server.address,
                "-grpc-tls=false", "-grpc-insecure-tls=false", "-id", agent, "-registry-name",
                "registry.local", "-registry-user", "admin", "-registry-pass", "s3cret"]  # fmt: skip
        run = ["--network", "host", "-v", f"{executable}:/tink-agent:ro", *HOOK_BINDS,
               "-e", "TINKLET_STATE_DIR=/worker", "--entrypoint", line[0], base, *line[1:]]  # fmt: skip
        output = run_worker_container(server, f"tink-agent-{agent}", run, agent)
        assert_failed_with_the_actions_words(server)
    assert "s3cret" not in output


def _suite() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return "bookworm"


def test_insecure_tls_from_hook_bootkits_variables(image: str, tmp_path: Path, worker_dir: Path) -> None:
    """tinkerbell_tls=true tinkerbell_insecure_tls=true on the cmdline and no CA anywhere: the
    frozen executable's TLS connects, with one warning."""
    pki = make_test_pki(tmp_path / "pki")
    agent = f"tls-{uuid.uuid4().hex[:8]}"
    tls = ServerTls.from_files(pki.server_cert, pki.server_key)
    with TinkServer([parse_workflow(workflow(agent), agent_id=agent)], agent, tls=tls) as server:
        env = hook_bootkit_env(server.address, agent, TINKERBELL_TLS="true", TINKERBELL_INSECURE_TLS="true")
        run = ["--privileged", "--network", "host", *HOOK_BINDS, *env, image]
        output = run_worker_container(server, f"tink-worker-{agent}", run, agent)
        assert_failed_with_the_actions_words(server)
    assert output.count("without verifying the Tink server") == 1, output
    assert "(TLS)" in output


def test_agent_attributes_in_the_container_are_the_hosts(image: str) -> None:
    """Started as hook-bootkit starts it (privileged, host network, /dev bound), the worker
    sees the host's CPU, memory, disks, NICs and PCI devices (without host network it would
    not see the NICs)."""
    host = subprocess.run([str(Path(sys.executable).parent / "tinklet"), "agent-attributes"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    hook = ("--privileged", "--network", "host", *HOOK_BINDS)
    inside = docker("run", "--rm", *hook, image, "agent-attributes")
    assert json.loads(inside.stdout) == json.loads(host)
    assert json.loads(host), "this host has attributes to compare"


EXTRA_RUNTIME = '''
from tinklet_core.hookspecs import hookimpl
from tinklet_core.runtime import RuntimeSpec


class EchoRuntime:
    def close(self):
        pass


@hookimpl
def tinklet_runtimes():
    return [RuntimeSpec("echo-extra", lambda settings: EchoRuntime(), summary="a third-party runtime")]
'''


def test_a_third_party_plugin_is_added_to_the_executable(executable: Path, tmp_path: Path) -> None:
    """A plugin installed into a directory on TINKLET_PLUGIN_PATH is found by its entry point,
    and a bare module there can be named with TINKLET_PLUGINS (a frozen interpreter ignores
    PYTHONPATH)."""
    site = tmp_path / "plugins"
    install_plugin(site, "tinklet-extra", "extra", "tinklet_extra", EXTRA_RUNTIME)
    write_module(site, "tinklet_bare", EXTRA_RUNTIME.replace("echo-extra", "echo-bare"))
    env = {**os.environ, "TINKLET_PLUGIN_PATH": str(site), "TINKLET_PLUGINS": "tinklet_bare"}
    listed = subprocess.run([str(executable), "plugins", "list", "--json"], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert report["failures"] == []
    runtimes = {runtime["name"] for runtime in report["runtimes"]}
    assert {"echo-extra", "echo-bare", "docker", "podman", "kube"} <= runtimes
    plugins = {plugin["distribution"]: plugin["version"] for plugin in report["plugins"]}
    assert plugins["tinklet-extra"] == "1.0"
    without = subprocess.run([str(executable), "plugins", "list", "--json"], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "PYTHONPATH": str(site)})  # fmt: skip
    assert "echo-extra" not in without.stdout, "only TINKLET_PLUGIN_PATH adds to the executable's path"


@pytest.fixture(scope="module")
def private_containerd() -> Iterator[PrivateContainerd]:
    """The containerd plugin's private containerd (own root, state, socket), the busybox test
    image imported into namespace ``tinkerbell``."""
    missing = containerd_missing()
    if missing:
        pytest.skip(missing)
    with containerd_with_test_image() as daemon:
        yield daemon


def test_the_executable_runs_captainos_unit_line_with_containerd(
    executable: Path, image: str, private_containerd: PrivateContainerd
) -> None:
    """CaptainOS's unit line with ``-runtime containerd`` on the Python-less base, against a
    private containerd. The worker is in a container here (CaptainOS runs it on the host): the
    daemon's directory is bound at the same path on both sides, since containerd and its shim
    open what the worker names there (the socket, the action's /tinkerbell directory, the stdio
    FIFOs it makes under TMPDIR)."""
    agent = f"captain-{uuid.uuid4().hex[:8]}"
    shared = private_containerd.root
    (shared / "tmp").mkdir(exist_ok=True)
    base = f"tinklet/base-debian:{_suite()}"
    spec = workflow(agent)
    actions = spec["tasks"][0]["actions"]  # type: ignore[index]
    actions.append({"name": "four", "image": BUSYBOX, "command": ["sh", "-c", "echo never"]})
    with TinkServer([parse_workflow(spec, agent_id=agent)], agent) as server:
        line = ["/tink-agent", "-runtime", "containerd", "-containerd-socket", private_containerd.socket,
                "-transport", "grpc", "-grpc-server", server.address, "-grpc-tls=false",
                "-grpc-insecure-tls=false", "-id", agent, "-registry-name", "registry.local",
                "-registry-user", "admin", "-registry-pass", "s3cret"]  # fmt: skip
        env = {"TMPDIR": f"{shared}/tmp", "TINKLET_STATE_DIR": f"{shared}/worker",
               "TINKLET_CONTAINERD_DATA_ROOT": f"{shared}/nerdctl", "TINKLET_CONTAINERD_NETWORK": "none",
               "TINKLET_CONTAINERD_CERTS_DIR": f"{shared}/certs.d"}  # fmt: skip
        run = ["--network", "host", "-v", f"{executable}:/tink-agent:ro", "-v", f"{shared}:{shared}",
               *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
               "--entrypoint", line[0], base, *line[1:]]  # fmt: skip
        output = run_worker_container(server, f"tink-agent-{agent}", run, agent)
        assert_failed_with_the_actions_words(server)
        assert server.states_of("t/four") == [], "served after a failure"
    assert "s3cret" not in output
    assert private_containerd.ctr("containers", "ls", "-q").stdout.split() == [], output
