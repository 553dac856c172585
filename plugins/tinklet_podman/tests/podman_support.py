"""Helpers for the podman plugin's tests: a real Podman service, actions, and leftovers.

Everything here talks to the real ``podman`` on this machine. As root in this sandbox Podman
needs ``CONTAINERS_CONF=/etc/containers/tinklet-test.conf`` (no default ulimits, runc), which
the conftest exports for the tests only; the plugin itself never reads the environment.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinklet_podman.runtime import PodmanRuntime

from tinklet_core.model import Action, Outcome, RegistryCredentials
from tinklet_core.runtime import ActionContext, RuntimeSettings

TEST_CONF = "/etc/containers/tinklet-test.conf"
IMAGE = "tinklet/busybox:latest"
AGENT = f"podman-plugin-tests-{uuid.uuid4().hex[:8]}"
"""This process's test agent: pytest-xdist workers run these files side by side on one Podman."""


def podman(*args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run the podman CLI; its stdout."""
    result = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def leftovers(agent_id: str = AGENT) -> list[str]:
    """Names of the action containers (label ``tinklet.action``) of ``agent_id`` that exist.

    Asked through the podman CLI, so it works after the runtime (and its service) closed.
    """
    out = podman(
        "ps", "-a", "--filter", "label=tinklet.action", "--filter", f"label=tinklet.agent={agent_id}",
        "--format", "{{.Names}}",
    )  # fmt: skip
    return out.split()


def remove_leftovers(agent_id: str = AGENT) -> None:
    """Remove the test agent's containers (only ours: other helpers share this Podman)."""
    for name in leftovers(agent_id):
        podman("rm", "-f", name, check=False)


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass
class ServiceProcess:
    """A ``podman system service`` a test started at ``socket``."""

    process: subprocess.Popen[bytes]
    socket: Path
    cleanup_dir: Path | None = None

    @property
    def url(self) -> str:
        """The service's ``unix://`` URL."""
        return f"unix://{self.socket}"

    def stop(self) -> None:
        """Terminate it (kill if needed) and remove its directory when the test made one."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.cleanup_dir is not None:
            shutil.rmtree(self.cleanup_dir, ignore_errors=True)


def start_service(socket: Path | None = None, env: dict[str, str] | None = None) -> ServiceProcess:
    """Start ``podman system service`` on ``socket`` (a fresh temporary one by default)."""
    cleanup = None
    if socket is None:
        cleanup = Path(tempfile.mkdtemp(prefix="tinklet-podman-test-"))
        socket = cleanup / "podman.sock"
    socket.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    service = ServiceProcess(process, socket, cleanup)
    if (
        not wait_until(lambda: socket.exists() or process.poll() is not None, 15)
        or process.poll() is not None
    ):
        service.stop()
        raise AssertionError(f"podman system service did not start at {socket}")
    return service


def make_action(command: list[str], image: str = IMAGE, **fields: object) -> Action:
    """An action of the test agent with unique ids."""
    unique = f"{time.monotonic_ns()}"
    return Action(
        workflow_id=f"wf-{unique}",
        task_id="task",
        action_id=f"action-{unique}",
        agent_id=AGENT,
        name="podman-test",
        image=image,
        command=tuple(command),
        **fields,  # type: ignore[arg-type]
    )


@dataclass
class Run:
    """What one action run gave: the outcome (or the exception) and every output line."""

    outcome: Outcome | None
    lines: list[str] = field(default_factory=list)
    error: BaseException | None = None
    seconds: float = 0.0


def execute(
    runtime: PodmanRuntime,
    action: Action,
    *,
    settings: RuntimeSettings | None = None,
    deadline_in: float | None = None,
    cancel_after: float | None = None,
    credentials: RegistryCredentials | None = None,
) -> Run:
    """Run ``action`` through the runtime's hook, as the worker would."""
    lines: list[str] = []
    cancelled = threading.Event()
    timer = threading.Timer(cancel_after, cancelled.set) if cancel_after is not None else None
    context = ActionContext(
        action=action,
        settings=settings or runtime.settings,
        deadline=None if deadline_in is None else time.monotonic() + deadline_in,
        cancelled=cancelled,
        output=lines.append,
        registry_credentials=lambda image: credentials,
        log=logging.getLogger("tinklet.podman.tests"),
    )
    started = time.monotonic()
    if timer is not None:
        timer.start()
    try:
        outcome = runtime.tinklet_execute_action(context)
    except Exception as exc:
        return Run(None, lines, exc, time.monotonic() - started)
    finally:
        if timer is not None:
            timer.cancel()
    return Run(outcome, lines, None, time.monotonic() - started)


def podman_env() -> dict[str, str]:
    """The environment the tests run Podman with."""
    return {**os.environ, "CONTAINERS_CONF": TEST_CONF}
