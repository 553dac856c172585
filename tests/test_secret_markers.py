"""The marker-secret test: every error path of issue 11, run with marker secrets, leaks nothing.

Each path runs ``python -m tinklet_core`` as a user would, through the docker, podman and kube
runtimes, with a marker registry password and the text of a marker TLS key. Everything it
captures — standard output, standard error (at debug level) and every report the test Tink
server received — is searched for the password in plain, base64, URL-safe base64 and JSON-auth
forms and for the key's lines.

The registry is a recording fake that refuses every login and *echoes the Authorization header
it received* in its error, as careless registries and proxies do: dockerd and Podman hand that
error back to tinklet word for word, with ``Basic base64(user:password)`` in it.
"""

from __future__ import annotations

import base64
import http.server
import importlib.util
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tinklet_core.model import State
from tinklet_core.testing.certs import TestPki, make_test_pki
from tinklet_core.testing.tink_server import Report, TinkServer
from tinklet_core.workflow import parse_workflow

USER = "marker-user"
PASSWORD = f"MarkerPass-{uuid.uuid4().hex}"
PODMAN_CONF = "/etc/containers/tinklet-test.conf"
PODMAN_CERTS = Path("/etc/containers/certs.d")
RUN_TIMEOUT = 90


def _runtime_missing(runtime: str) -> str | None:
    if runtime == "docker":
        if not Path("/var/run/docker.sock").exists():
            return "dockerd is not running"
    elif runtime == "podman":
        if shutil.which("podman") is None or importlib.util.find_spec("tinklet_podman") is None:
            return "podman or the tinklet-podman plugin is missing"
        if not Path(PODMAN_CONF).is_file():
            return f"{PODMAN_CONF} is missing (scripts/setup writes it)"
    elif importlib.util.find_spec("tinklet_kube") is None or not Path("/var/run/docker.sock").exists():
        return "the tinklet-kube plugin or dockerd (its test API server's kubelet) is missing"
    return None


RUNTIMES = [
    pytest.param(
        name, marks=pytest.mark.skipif(bool(_runtime_missing(name)), reason=_runtime_missing(name) or "")
    )
    for name in ("docker", "podman", "kube")
]


def secret_forms(key_text: str) -> list[str]:
    """Every form in which the marker secrets must never appear."""
    login = f"{USER}:{PASSWORD}".encode()
    encoded = [
        base64.b64encode(login).decode(),
        base64.urlsafe_b64encode(login).decode(),
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(json.dumps({"username": USER, "password": PASSWORD}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"username": USER, "password": PASSWORD}).encode()).decode(),
    ]
    key_lines = [line for line in key_text.splitlines() if line and not line.startswith("-----")]
    return [PASSWORD, *(form.rstrip("=")[:-2] for form in encoded), *key_lines]


def assert_no_secret(captured: str, key_text: str) -> None:
    for form in secret_forms(key_text):
        assert form not in captured, f"a secret leaked in the form {form[:6]}…:\n{captured[-3000:]}"


class _EchoingHandler(http.server.BaseHTTPRequestHandler):
    """A registry that wants Basic auth and refuses any login, echoing it in the error."""

    protocol_version = "HTTP/1.1"
    seen: list[str]

    def _answer(self, code: int, body: dict[str, Any], authenticate: bool) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if authenticate:
            self.send_header("WWW-Authenticate", 'Basic realm="echoing"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        self.seen.append(auth or "")
        if auth and self.path == "/v2/":
            self._answer(200, {}, authenticate=False)
            return
        message = f"login {auth} not accepted" if auth else "authentication required"
        self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": message}]}, authenticate=True)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class EchoingRegistry:
    """The fake registry on a loopback HTTPS port, trusted by Podman while it runs."""

    server: http.server.ThreadingHTTPServer
    host: str
    seen: list[str]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("markers-pki"))


@pytest.fixture(scope="module")
def echoing_registry(pki: TestPki) -> Iterator[EchoingRegistry]:
    seen: list[str] = []
    handler = type("Handler", (_EchoingHandler,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    host = f"127.0.0.1:{server.server_address[1]}"
    trust = PODMAN_CERTS / host
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        if PODMAN_CERTS.parent.is_dir():
            trust.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pki.ca_cert, trust / "ca.crt")
        yield EchoingRegistry(server, host, seen)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(trust, ignore_errors=True)


@pytest.fixture(scope="module")
def kubeconfig() -> Iterator[str | None]:
    """The kube plugin's test API server (pods run on the local dockerd), when installed."""
    if importlib.util.find_spec("tinklet_kube") is None:
        yield None
        return
    from tinklet_kube_testing import KubeTestServer

    with KubeTestServer() as server:
        yield str(server.kubeconfig)


@dataclass(frozen=True)
class Captured:
    returncode: int
    text: str
    reports: tuple[Report, ...] = ()


def _environment(home: Path, extra: dict[str, str]) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TINKLET_")}
    environment.update(
        HOME=str(home),
        DOCKER_CONFIG=str(home / ".docker"),
        REGISTRY_AUTH_FILE=str(home / "auth.json"),
        CONTAINERS_CONF=PODMAN_CONF,
        **extra,
    )
    return environment


def runtime_flags(runtime: str, kubeconfig: str | None) -> list[str]:
    flags = ["--runtime", runtime, "--loglevel", "debug"]
    if runtime == "kube" and kubeconfig:  # a pull that cannot succeed fails after 1 s, not 60
        flags += ["--kubeconfig", kubeconfig, "--kube-pull-timeout", "1"]
        # a helper image that is here: the failing pull must be the action image's, with its login
        flags += ["--kube-failure-helper-image", "tinklet/busybox:latest"]
    return flags


def start_error(home: Path, args: list[str], environ: dict[str, str] | None = None) -> Captured:
    """A run that must end at start with exit 2."""
    command = [
        sys.executable,
        "-m",
        "tinklet_core",
        "--tink",
        "127.0.0.1:9",
        "--identifier",
        "markers",
        *args,
    ]
    done = subprocess.run(
        command, env=_environment(home, environ or {}), capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    return Captured(done.returncode, done.stdout + done.stderr)


def serve_one_pull(
    home: Path, image: str, args: list[str], environ: dict[str, str] | None = None
) -> Captured:
    """Work for a test Tink server until the action pulling ``image`` is reported final."""
    agent = f"markers-{uuid.uuid4().hex[:8]}"
    workflow = {"name": "markers", "tasks": [{"name": "t", "actions": [
        {"name": "pull", "image": image, "timeout": 60, "command": ["echo", "never runs"]},
    ]}]}  # fmt: skip
    with TinkServer([parse_workflow(workflow, agent_id=agent)], agent) as server:
        command = [
            sys.executable,
            "-m",
            "tinklet_core",
            "--tink",
            server.address,
            "--identifier",
            agent,
            *args,
        ]
        process = subprocess.Popen(
            command,
            env=_environment(home, environ or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        finished = server.wait_until(
            lambda: any(state.is_final for state in server.states_of("t/pull")), timeout=RUN_TIMEOUT
        )
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        reports = tuple(server.reports)
    assert finished, output
    return Captured(process.returncode, output, reports)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    directory = tmp_path / "home"
    directory.mkdir()
    return directory


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_no_error_path_leaks_a_marker_secret(
    runtime: str,
    pki: TestPki,
    echoing_registry: EchoingRegistry,
    kubeconfig: str | None,
    home: Path,
    tmp_path: Path,
) -> None:
    key_text = pki.client_key.read_text()
    flags = runtime_flags(runtime, kubeconfig)
    login = json.dumps({"name": echoing_registry.host, "user": USER, "password": PASSWORD})
    image = f"{echoing_registry.host}/markers/never:{uuid.uuid4().hex[:8]}"
    login_file = tmp_path / "logins.json"
    login_file.write_text(login)
    wrong_key = tmp_path / "wrong-key.yaml"
    wrong_key.write_text(f"pull:\n  name: {echoing_registry.host}\n  user: {USER}\n  password: {PASSWORD}\n")
    half_login = json.dumps({"name": echoing_registry.host, "password": PASSWORD})
    cert = str(pki.client_cert)

    starts = {
        "key-as-flag": start_error(home, [*flags, "--tls-cert", cert, "--tls-key", key_text]),
        "key-in-env": start_error(home, [*flags, "--tls-cert", cert], {"TINKLET_TLS_KEY": key_text}),
        "login-under-pull": start_error(home, [*flags, "--config", str(wrong_key)]),
        "half-login-flag": start_error(home, [*flags, "--registry", half_login]),
        "half-login-env": start_error(home, flags, {"TINKLET_REGISTRY": half_login}),
    }
    for name, captured in starts.items():
        assert captured.returncode == 2, (name, captured.text)
        assert len(captured.text.strip().splitlines()) == 1, (name, captured.text)
        assert_no_secret(captured.text, key_text)

    pulls = {
        "flag": serve_one_pull(home, image, [*flags, "--registry", login]),
        "env": serve_one_pull(home, image, flags, {"TINKLET_REGISTRY": login}),
        "file": serve_one_pull(home, image, [*flags, "--registry-file", str(login_file)]),
    }
    for name, captured in pulls.items():
        assert captured.returncode == 0, (name, captured.text)
        finals = [report for report in captured.reports if report.state.is_final]
        assert [report.state for report in finals] == [State.FAILED], (name, captured.text)
        assert_no_secret(captured.text, key_text)
        assert_no_secret(" ".join(report.message for report in captured.reports), key_text)
    if runtime != "kube":  # the kube test API server pulls nothing; the engines did reach the registry
        assert any(PASSWORD not in seen and seen.startswith("Basic ") for seen in echoing_registry.seen)
        assert "not accepted" in " ".join(r.message for c in pulls.values() for r in c.reports)


def _child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in children.read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(bool(_runtime_missing("podman")), reason=_runtime_missing("podman") or "")
def test_the_private_podman_service_never_sees_the_logins(tmp_path: Path, home: Path) -> None:
    if Path("/run/podman/podman.sock").exists():
        pytest.skip("a Podman service answers at /run/podman/podman.sock; tinklet would rightly use it")
    workflow = tmp_path / "sleep.yaml"
    workflow.write_text(
        "name: env\ntasks:\n  - name: t\n    actions:\n"
        "      - {name: sleep, image: tinklet/busybox:latest, timeout: 60, command: [sleep, '30']}\n"
    )
    login = json.dumps({"name": "r.example", "user": USER, "password": PASSWORD})
    environment = _environment(home, {"TINKLET_REGISTRY": login, "XDG_RUNTIME_DIR": str(tmp_path / "xdg")})
    identifier = f"private-service-{uuid.uuid4().hex[:8]}"  # not agent `local`: see tests/test_local_runs.py
    command = [
        sys.executable, "-m", "tinklet_core", "--identifier", identifier,
        "run", str(workflow), "--runtime", "podman",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        service = None
        for _ in range(300):
            service = next(
                (
                    pid
                    for pid in _child_pids(process.pid)
                    if b"system\0service" in _read(f"/proc/{pid}/cmdline")
                ),
                None,
            )
            if service is not None or process.poll() is not None:
                break
            threading.Event().wait(0.05)
        assert service is not None, "tinklet started no private Podman service"
        environ = _read(f"/proc/{service}/environ").split(b"\0")
        assert not any(entry.startswith(b"TINKLET_") for entry in environ)
        assert PASSWORD.encode() not in b"\0".join(environ)
        assert f"CONTAINERS_CONF={PODMAN_CONF}".encode() in environ  # the rest is inherited
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert PASSWORD not in output


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""
