"""The runtime object: runs one action per ``docker run`` and always removes the container.

The whole contract of a runtime is here: pull per the pull policy with the registry hook's
credentials, privilege per the setting, labels on what it creates, output streamed line by line,
TIMEOUT at the deadline, ``ActionInterrupted`` on shutdown, the proxy in the action's
environment, the action's own failure reason and message (a private ``/tinkerbell`` directory,
read by the core's :mod:`tinklet_core.action_failure`), and nothing left behind.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import cast

from tinklet_core.action_failure import CONTAINER_DIR, failure_directory, with_action_failure
from tinklet_core.errors import ActionInterrupted, RuntimeUnavailable
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Action, Outcome, RegistryCredentials, State
from tinklet_core.proxy import with_proxy_defaults
from tinklet_core.runtime import (
    ActionContext,
    LineSplitter,
    Privilege,
    RuntimeSettings,
    WaitResult,
    image_registry,
    wait_for_exit,
)

RUNTIME_LABEL = "tinklet.runtime=dockercli"
DOCKER_ERROR = 125  # `docker run` could not create or start the container (a failed pull…)


def leftovers(agent_id: str, docker: str = "docker") -> list[str]:
    """Names of this runtime's containers for ``agent_id`` that still exist."""
    result = subprocess.run(
        [docker, "ps", "-a", "--format", "{{.Names}}",
         "--filter", f"label={RUNTIME_LABEL}", "--filter", f"label=tinklet.agent={agent_id}"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return result.stdout.split()


class DockerCliRuntime:
    """Opened once when ``--runtime dockercli`` is chosen; checks that docker answers."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self._settings = settings
        self._docker = str(settings.options.get("dockercli_command") or "docker")
        try:
            subprocess.run([self._docker, "version"], capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeUnavailable(
                f"the docker command cannot reach a daemon ({type(exc).__name__})"
            ) from None
        self._remove(leftovers(settings.agent_id, self._docker))  # what a crashed worker left

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        """Run the action with ``docker run``; the action may explain a failure in its
        ``/tinkerbell`` directory, which is read after it ends and then removed."""
        with failure_directory() as failure_dir:
            return with_action_failure(self._run(context, failure_dir), failure_dir)

    def _run(self, context: ActionContext, failure_dir: Path) -> Outcome:
        """Run the action with ``docker run``; kill it at the deadline or on shutdown."""
        name = f"tinklet-{uuid.uuid4().hex[:12]}"
        with tempfile.TemporaryDirectory(prefix="tinklet-dockercli-") as config:
            self._write_login(Path(config), self._login(context), image_registry(context.action.image))
            flags = ["--volume", f"{failure_dir}:{CONTAINER_DIR}", *self._flags(context.action)]
            command = [self._docker, "--config", config, "run", "--name", name, *flags]
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            exited = threading.Event()
            last: list[str] = []
            reader = threading.Thread(target=_stream, args=(process, context, last, exited), daemon=True)
            reader.start()
            result = wait_for_exit(exited, context)
            if result is not WaitResult.EXITED:
                self._stop(name, process)
            process.wait()
            reader.join(5)
            if result is WaitResult.EXITED:
                self._remove([name])
        if result is WaitResult.CANCELLED:
            raise ActionInterrupted(f"{context.action.label} stopped")
        if result is WaitResult.TIMED_OUT:
            return Outcome(State.TIMEOUT, reason=f"timed out after {context.action.timeout}s")
        if process.returncode == 0:
            return Outcome(State.SUCCESS)
        if process.returncode == DOCKER_ERROR:
            return Outcome(State.FAILED, reason=last[-1] if last else "docker run failed")
        return Outcome(State.FAILED, reason=f"exit code {process.returncode}", exit_code=process.returncode)

    def _login(self, context: ActionContext) -> RegistryCredentials | None:
        return context.registry_credentials(context.action.image)

    def _pull_flag(self) -> str:
        return f"--pull={self._settings.pull_policy.value}"

    def _flags(self, action: Action) -> list[str]:
        flags = [self._pull_flag(), "--label", RUNTIME_LABEL]
        for key, value in action.labels().items():
            flags += ["--label", f"{key}={value}"]
        if self._settings.privilege is Privilege.PRIVILEGED:
            flags.append("--privileged")
        elif self._settings.privilege is Privilege.ALL_CAPS:
            flags += ["--cap-add", "ALL"]
        for key, value in with_proxy_defaults(action.env, self._settings.proxy):
            flags += ["--env", f"{key}={value}"]
        for volume in action.volumes:
            flags += ["--volume", f"{volume.source}:{volume.target}{':ro' if volume.read_only else ''}"]
        if action.pid_namespace == "host":
            flags += ["--pid", "host"]
        if action.network_namespace == "host":
            flags += ["--network", "host"]
        return [*flags, action.image, *action.command]

    @staticmethod
    def _write_login(config: Path, login: RegistryCredentials | None, registry: str) -> None:
        auths = {}
        if login is not None:
            token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
            auths[registry] = {"auth": token}
        (config / "config.json").write_text(json.dumps({"auths": auths}))

    def _stop(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Kill and remove the container (killing only the docker client would leave it running)."""
        self._remove([name])

    def _remove(self, names: list[str]) -> None:
        if names:
            subprocess.run([self._docker, "rm", "--force", *names], capture_output=True, timeout=60)

    def close(self) -> None:
        """Nothing to release: every action's container is already removed."""


def _stream(
    process: subprocess.Popen[bytes], context: ActionContext, last: list[str], exited: threading.Event
) -> None:
    def line(text: str) -> None:
        last[:] = [text]
        context.output(text)

    splitter = LineSplitter(line)
    stdout = cast(io.BufferedReader, process.stdout)
    for chunk in iter(lambda: stdout.read1(65536), b""):
        splitter.feed(chunk)
    splitter.close()
    process.wait()
    exited.set()
