"""A runtime that runs an action's command as a local process, ignoring its image.

For the core's own tests and as the smallest complete example of a runtime plugin: it honours
the deadline (TIMEOUT), shutdown (``ActionInterrupted``), env and streamed output exactly as a
container runtime must. It is not an entry point, so it never shows up in a user's runtime
list; load it with ``tinklet -p tinklet_core.testing.process_runtime --runtime process …`` or
``load_plugins(extra=["tinklet_core.testing.process_runtime"])``.
"""

from __future__ import annotations

import io
import subprocess
import threading
from dataclasses import dataclass, field
from typing import cast

from tinklet_core.errors import ActionInterrupted
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Outcome, State
from tinklet_core.runtime import (
    ActionContext,
    LineSplitter,
    RuntimeSettings,
    RuntimeSpec,
    WaitResult,
    WorkflowEnvironment,
    wait_for_exit,
)


@dataclass
class ProcessRuntime:
    """Runs ``action.command`` with ``action.env`` as a child process."""

    settings: RuntimeSettings
    prepared: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    @hookimpl
    def tinklet_prepare_environment(self, environment: WorkflowEnvironment) -> None:
        """Record the workflow, so tests can see the hook ran."""
        self.prepared.append(environment.workflow_id)

    @hookimpl
    def tinklet_cleanup_environment(self, environment: WorkflowEnvironment) -> None:
        """Record the workflow, so tests can see the hook ran."""
        self.cleaned.append(environment.workflow_id)

    @hookimpl
    def tinklet_execute_action(self, context: ActionContext) -> Outcome:
        """Run the command; kill it at the deadline or on shutdown."""
        action = context.action
        if not action.command:
            return Outcome(State.FAILED, reason="the process runtime needs a command")
        try:
            process = subprocess.Popen(
                list(action.command),
                env=dict(action.env),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            return Outcome(State.FAILED, reason=f"cannot start {action.command[0]!r}: {exc.strerror}")
        exited = threading.Event()
        reader = threading.Thread(target=self._stream, args=(process, context, exited), daemon=True)
        reader.start()
        try:
            result = wait_for_exit(exited, context)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            reader.join(timeout=5)
        if result is WaitResult.CANCELLED:
            raise ActionInterrupted(f"{action.label} stopped")
        if result is WaitResult.TIMED_OUT:
            return Outcome(State.TIMEOUT, reason=f"timed out after {action.timeout}s")
        if process.returncode == 0:
            return Outcome(State.SUCCESS)
        return Outcome(State.FAILED, reason=f"exit code {process.returncode}", exit_code=process.returncode)

    @staticmethod
    def _stream(process: subprocess.Popen[bytes], context: ActionContext, exited: threading.Event) -> None:
        splitter = LineSplitter(context.output)
        stdout = cast(io.BufferedReader, process.stdout)
        for chunk in iter(lambda: stdout.read1(65536), b""):
            splitter.feed(chunk)
        splitter.close()
        process.wait()
        exited.set()

    def close(self) -> None:
        """Nothing to release."""


@hookimpl
def tinklet_runtimes() -> list[RuntimeSpec]:
    """One runtime: ``process``."""
    return [RuntimeSpec(name="process", factory=ProcessRuntime, summary="local processes (tests)")]
