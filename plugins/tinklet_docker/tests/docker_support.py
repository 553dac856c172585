"""Helpers for the docker runtime's tests: actions and contexts as the worker builds them, a
unix-socket proxy that can "kill" the daemon for one runtime, and registry storage surgery."""

from __future__ import annotations

import contextlib
import logging
import socket
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinklet_core.model import Action, RegistryCredentials
from tinklet_core.runtime import ActionContext, Privilege, PullPolicy, RuntimeSettings


class SocketProxy:
    """Forwards a unix socket to dockerd's. :meth:`stop` drops every connection and the socket
    file at once, which is what a runtime sees when its daemon dies."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.target = target
        self._connections: list[socket.socket] = []
        self._stopped = False
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The proxy's docker URL."""
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            with self._lock:
                if self._stopped:  # accepted while stop() ran: a dead daemon answers nothing
                    client.close()
                    upstream.close()
                    return
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            self._stopped = True
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()


def delete_layers_with(storage: Path, member: str) -> None:
    """Delete from a registry's filesystem storage every layer blob whose archive holds
    ``member`` (a path in the layer): its manifest stays, so a pull fails half-way."""
    for blob in storage.rglob("blobs/sha256/*/*/data"):
        if blob.read_bytes()[:2] != b"\x1f\x8b":  # not gzip: a manifest or an image config
            continue
        with tarfile.open(blob, mode="r:gz") as layer:
            if member in layer.getnames():
                blob.unlink()


IMAGE = "tinklet/busybox:latest"


@dataclass
class Run:
    """One action ready to run (``context``), with the lines it printed so far."""

    context: ActionContext = field(init=False)
    lines: list[str] = field(default_factory=list)
    _watched: dict[str, threading.Event] = field(default_factory=dict)

    def output(self, line: str) -> None:
        """The context's output function: keep the line, wake whoever waits for it."""
        self.lines.append(line)
        if line in self._watched:
            self._watched[line].set()

    def printed(self, line: str) -> threading.Event:
        """An event set once ``line`` is printed (ask before running)."""
        return self._watched.setdefault(line, threading.Event())


def make_action(agent_id: str, command: list[str], **fields: Any) -> Action:
    """An action of ``IMAGE`` with unique ids and the given agent id."""
    unique = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "workflow_id": f"wf-{unique}",
        "task_id": "task",
        "action_id": f"action-{unique}",
        "agent_id": agent_id,
        "name": "test",
        "image": IMAGE,
        "command": tuple(command),
    }
    values.update(fields)
    return Action(**values)


def make_run(
    action: Action,
    *,
    deadline_in: float | None = None,
    pull_policy: PullPolicy = PullPolicy.MISSING,
    privilege: Privilege = Privilege.PRIVILEGED,
    credentials: RegistryCredentials | None = None,
) -> Run:
    """A run of ``action`` with a deadline ``deadline_in`` seconds from now (``None``: none)."""
    run = Run()
    run.context = ActionContext(
        action=action,
        settings=RuntimeSettings(agent_id=action.agent_id, pull_policy=pull_policy, privilege=privilege),
        deadline=None if deadline_in is None else time.monotonic() + deadline_in,
        cancelled=threading.Event(),
        output=run.output,
        registry_credentials=lambda image: credentials,
        log=logging.getLogger("test"),
    )
    return run


def run_in_thread(runtime: Any, run: Run) -> tuple[threading.Thread, list[Any]]:
    """Start ``runtime.tinklet_execute_action`` in a thread; the list gets its outcome or error."""
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(runtime.tinklet_execute_action(run.context))
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result
