"""A real image registry for tests: Debian's ``docker-registry`` with TLS and a password.

:class:`TestRegistry` runs distribution 2.8 (``docker-registry serve CONFIG.yml``) on a free
loopback port, with filesystem storage in a temporary directory, a server certificate from
:func:`~tinklet_core.testing.certs.make_test_pki` and one bcrypt htpasswd login. It is what a
runtime plugin's tests pull from to prove that credentials from the registry hook reach the
registry. Example::

    with TestRegistry() as registry:
        reference = registry.push("tinklet/busybox:latest", "tinklet-test/busybox")
        ...  # pull ``reference`` with RegistryCredentials(registry.host, registry.username,
             # registry.password)

Traps this helper does not hide (they are the runtimes'): dockerd treats 127.0.0.0/8 as an
insecure registry, so it neither verifies the certificate nor needs :attr:`ca_file`; Podman
verifies it and finds the CA only under ``/etc/containers/certs.d/HOST:PORT/``
(:meth:`TestRegistry.trust_for_podman`). The docker CLI calls made here use a throw-away client
config directory, never the user's ``~/.docker``.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tinklet_core.testing.certs import make_test_pki

PODMAN_CERTS_DIR = Path("/etc/containers/certs.d")
START_TIMEOUT = 15.0
_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


class RegistryError(RuntimeError):
    """The registry would not start, or a docker CLI call against it failed."""


@dataclass(frozen=True)
class RegistryRequest:
    """One HTTP request the registry answered, from its access log."""

    method: str
    path: str
    status: int


def registry_tools_missing() -> str | None:
    """Why a :class:`TestRegistry` cannot run here, or ``None`` when it can."""
    missing = [tool for tool in ("docker-registry", "htpasswd", "openssl") if shutil.which(tool) is None]
    if not missing:
        return None
    return f"{', '.join(missing)} not installed (apt-get install docker-registry apache2-utils openssl)"


class TestRegistry:
    """A ``docker-registry`` with TLS and htpasswd auth on ``127.0.0.1:PORT``; a context manager.

    Entering starts it and waits until ``https://HOST/v2/`` answers (401 without a login);
    leaving stops it and removes its storage, its certificates, the CA written by
    :meth:`trust_for_podman` and the local docker tags :meth:`push` made.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, username: str = "tinklet", password: str | None = None) -> None:
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.root = Path(tempfile.mkdtemp(prefix="tinklet-registry-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._pushed: list[str] = []
        self._podman_ca_dir: Path | None = None
        self._htpasswd = self.root / "htpasswd"
        try:
            pki = make_test_pki(self.root / "pki", name="tinklet test registry")
            self._htpasswd.write_text(_bcrypt_line(self.username, self.password))
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        self.ca_file = pki.ca_cert
        self._server_cert = pki.server_cert
        self._server_key = pki.server_key

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The registry's combined output: its access log and its own log lines."""
        return self.root / "registry.log"

    def __enter__(self) -> TestRegistry:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the registry (again, after :meth:`stop`) on a free port and wait until it answers.

        The storage survives a stop, so what was pushed is there after a restart; the port may
        differ. A port another process took between probing and binding is retried.
        """
        if self.running:
            return
        last_error = "not started"
        for _attempt in range(3):
            self.port = _free_port()
            self._write_config()
            log = self.log_file.open("ab")
            try:
                self._process = subprocess.Popen(
                    ["docker-registry", "serve", str(self.root / "config.yml")],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            finally:
                log.close()
            last_error = self._wait_until_answering()
            if not last_error:
                return
            self.stop()
        raise RegistryError(f"docker-registry did not start: {last_error}")

    @property
    def running(self) -> bool:
        """True while the registry process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the registry process, keeping its storage (a pull from it is then refused)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop the registry and remove everything it and this helper made."""
        self.stop()
        self.untrust_for_podman()
        for reference in self._pushed:
            subprocess.run(["docker", "rmi", reference], capture_output=True, check=False)
        self._pushed.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def push(self, local_image: str, name: str) -> str:
        """Tag the local docker image ``local_image`` as ``HOST/name`` and push it with the login.

        ``name`` may carry a tag (``repo:tag``; default ``latest``). Returns the full reference
        (``127.0.0.1:PORT/repo:tag``). The local tag stays until :meth:`close` (``docker rmi``
        it to make a test pull it again).
        """
        reference = f"{self.host}/{name}" if ":" in name.rpartition("/")[2] else f"{self.host}/{name}:latest"
        config_dir = self.root / "docker-client"
        config_dir.mkdir(exist_ok=True)
        self._docker("tag", "tag", local_image, reference)
        self._pushed.append(reference)
        client = ("--config", str(config_dir))  # never the user's ~/.docker
        login = ("login", "--username", self.username, "--password-stdin", self.host)
        self._docker("login", *client, *login, stdin=self.password)
        self._docker("push", *client, "push", reference)
        return reference

    def trust_for_podman(self) -> Path:
        """Install the CA where Podman looks for this registry's; removed on :meth:`close`.

        Podman (unlike dockerd on loopback) verifies the certificate, and its service reads
        registry CAs only from ``/etc/containers/certs.d/HOST:PORT/``. Call it after
        :meth:`start`: the directory is named after the port.
        """
        if not self.running:
            raise RegistryError("start the registry before trusting it: its port names the CA directory")
        self.untrust_for_podman()  # a restart may have moved it to another port
        directory = PODMAN_CERTS_DIR / self.host
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.ca_file, directory / "ca.crt")
        self._podman_ca_dir = directory
        return directory / "ca.crt"

    def untrust_for_podman(self) -> None:
        """Remove what :meth:`trust_for_podman` installed (nothing if it was not called)."""
        directory, self._podman_ca_dir = self._podman_ca_dir, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def requests(self) -> list[RegistryRequest]:
        """Every request the registry answered so far (all runs), oldest first."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [
            RegistryRequest(match["method"], match["path"], int(match["status"]))
            for match in _ACCESS_LINE.finditer(text)
        ]

    def manifest_requests(self, repository: str) -> list[RegistryRequest]:
        """The reads (``GET`` or ``HEAD``) of a manifest of ``repository`` (no host, no tag).

        Every pull reads the manifest first; dockerd sends only a ``HEAD`` when it already has
        the image, so the number of reads tells how often an image was pulled.
        """
        prefix = f"/v2/{repository}/manifests/"
        return [r for r in self.requests() if r.method in ("GET", "HEAD") and r.path.startswith(prefix)]

    def _write_config(self) -> None:
        (self.root / "config.yml").write_text(
            "version: 0.1\n"
            "log:\n  level: info\n  formatter: text\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'storage'}\n"
            "  delete:\n    enabled: true\n"
            "http:\n"
            f"  addr: {self.host}\n"
            f"  secret: {secrets.token_hex(16)}\n"
            f"  tls:\n    certificate: {self._server_cert}\n    key: {self._server_key}\n"
            f"auth:\n  htpasswd:\n    realm: tinklet-test-registry\n    path: {self._htpasswd}\n"
        )

    def _wait_until_answering(self) -> str:
        """``""`` once ``/v2/`` answers over TLS with the test CA, else why it did not."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.monotonic() + START_TIMEOUT
        reason = "no answer"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return f"it exited; last log line: {self._last_log_line()}"
            try:
                with urllib.request.urlopen(f"https://{self.host}/v2/", context=context, timeout=2):
                    return "it answered without asking for a login"
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return ""
                reason = f"HTTP {exc.code}"
            except (OSError, ssl.SSLError) as exc:
                reason = str(exc)
            time.sleep(0.05)
        return f"{reason} after {START_TIMEOUT:.0f}s"

    def _last_log_line(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
            if lines:
                return lines[-1][-300:]
        return "none"

    def _docker(self, what: str, *args: str, stdin: str | None = None) -> None:
        """Run ``docker ARGS``; a failure raises with docker's last line (password masked)."""
        result = subprocess.run(
            ["docker", *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            words = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
            raise RegistryError(f"docker {what} failed: {words.replace(self.password, '***')}")


def _bcrypt_line(username: str, password: str) -> str:
    result = subprocess.run(
        ["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RegistryError(f"htpasswd failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
