"""Finding a Podman API socket, or starting a private ``podman system service``.

Podman has no daemon: its REST API is served by ``podman system service`` on a socket that
systemd usually starts on demand (``/run/podman/podman.sock`` for root,
``$XDG_RUNTIME_DIR/podman/podman.sock`` for a user). Hosts without systemd (an in-memory OS
like the one Tinkerbell boots) have neither, so tinklet is daemonless by default: when no
socket answers it starts the service itself on a socket in a private temporary directory, and
stops it again in :meth:`PodmanService.stop`.

A service tinklet started never outlives tinklet: ``stop()`` terminates it (then kills it), the
directory with its socket is removed, and the service is started with the kernel's
parent-death signal so that even a ``kill -9`` of tinklet stops it. That signal follows the
*thread* that started the service, so the runtime must be opened from a thread that lives as
long as it (the core opens it from the main thread). The service runs in its own session, so a
Ctrl-C in tinklet's terminal reaches only tinklet, which then still has Podman to stop and remove
the running action's container.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinklet_core.config import child_environment
from tinklet_core.errors import RuntimeUnavailable
from tinklet_core.proxy import ProxySettings
from tinklet_core.runtime_helpers import one_line

log = logging.getLogger("tinklet.podman")

ROOT_SOCKET = "/run/podman/podman.sock"
START_TIMEOUT = 15.0
STOP_GRACE = 5.0
_PR_SET_PDEATHSIG = 1

#: Asks the socket at a URL whether Podman answers: ``None`` when it does, else why not.
Probe = Callable[[str], "str | None"]


def socket_url(value: str) -> str:
    """A podman-py base URL for ``value``: a path becomes ``unix://PATH``, a URL is kept."""
    return value if "://" in value else f"unix://{os.path.abspath(value)}"


def socket_path(url: str) -> Path | None:
    """The file behind a ``unix://`` URL, ``None`` for other schemes."""
    for prefix in ("unix://", "http+unix://"):
        if url.startswith(prefix):
            return Path(url[len(prefix) :])
    return None


def usual_sockets(xdg_runtime_dir: str | None) -> list[str]:
    """Where Podman's API socket usually is, in the order tinklet tries them."""
    candidates = []
    if xdg_runtime_dir:
        candidates.append(socket_url(os.path.join(xdg_runtime_dir, "podman", "podman.sock")))
    candidates.append(socket_url(ROOT_SOCKET))
    return candidates


def first_answering(candidates: list[str], probe: Probe) -> str | None:
    """The first candidate socket that exists and answers, or ``None``."""
    for url in candidates:
        path = socket_path(url)
        if path is not None and not path.exists():
            log.debug("no Podman socket at %s", path)
            continue
        problem = probe(url)
        if problem is None:
            return url
        log.debug("Podman socket %s does not answer: %s", url, problem)
    return None


def _parent_death_signal() -> Callable[[], None]:
    """A ``preexec_fn`` that asks the kernel to SIGTERM the child when its parent thread ends.

    libc is looked up before the fork: only the plain system call runs in the child.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class PodmanService:
    """A ``podman system service`` process tinklet started, and the directory of its socket."""

    process: subprocess.Popen[bytes]
    directory: Path
    url: str

    @property
    def pid(self) -> int:
        """The service's process id."""
        return self.process.pid

    @classmethod
    def start(
        cls, binary: str, probe: Probe, timeout: float = START_TIMEOUT, proxy: ProxySettings | None = None
    ) -> PodmanService:
        """Start the service on a private socket and wait (up to ``timeout`` s) until it answers.
        Its environment is tinklet's without ``TINKLET_*``, with ``proxy``'s variables (pulls).

        Fails with a one-line :class:`RuntimeUnavailable`: when ``binary`` is missing, or when
        the service exits or stays silent (with the end of what it wrote to stderr). Nothing is
        left running or on disk when it fails.
        """
        directory = Path(tempfile.mkdtemp(prefix="tinklet-podman-"))
        url = f"unix://{directory / 'podman.sock'}"
        command = [binary, "system", "service", "--time=0", url]
        try:
            with open(directory / "service.log", "wb") as stderr:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                    env=child_environment(proxy=proxy),  # no TINKLET_REGISTRY or other logins
                    preexec_fn=_parent_death_signal(),  # see the module docstring
                )
        except OSError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            what = "not found" if isinstance(exc, FileNotFoundError) else one_line(exc.strerror or exc)
            raise RuntimeUnavailable(
                f"cannot start the Podman service: podman binary {binary!r} {what}; "
                "install podman or point --podman-binary at it"
            ) from None
        service = cls(process, directory, url)
        try:
            service.wait_until_answering(probe, timeout)
        except BaseException:
            service.stop()
            raise
        return service

    def wait_until_answering(self, probe: Probe, timeout: float) -> None:
        """Poll the socket until the service answers; fail if it exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        socket = socket_path(self.url)
        problem = "its socket was never created"
        while True:
            if self.process.poll() is not None:
                status, tail = self.process.returncode, self.stderr_tail()
                raise RuntimeUnavailable(f"podman system service exited with status {status}: {tail}")
            if socket is not None and socket.exists():
                problem = probe(self.url) or ""
                if not problem:
                    return
            if time.monotonic() >= deadline:
                raise RuntimeUnavailable(
                    f"podman system service did not answer within {timeout:g} s ({problem}): "
                    f"{self.stderr_tail()}"
                )
            time.sleep(0.05)

    def stderr_tail(self, lines: int = 3) -> str:
        """The last lines the service wrote to stderr, on one line."""
        try:
            text = (self.directory / "service.log").read_bytes()[-4096:].decode("utf-8", "replace")
        except OSError:
            return "no output"
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return one_line(" | ".join(tail)) if tail else "no output"

    def stop(self) -> None:
        """Terminate the service (kill it if it lingers) and remove its directory. Idempotent."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                log.warning("podman system service (pid %d) ignored SIGTERM; killing it", self.pid)
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
