"""TLS never silently downgrades: options imply TLS, bad files fail at start, CA URLs, named reasons."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinklet_core.config import load_settings
from tinklet_core.errors import ActionInterrupted, ConfigError
from tinklet_core.model import State
from tinklet_core.testing.certs import TestPki, make_test_pki
from tinklet_core.testing.tink_server import ServerTls, TinkServer
from tinklet_core.tls import TlsSettings, load_tls, verification_failure
from tinklet_core.workflow import parse_workflow

AGENT = "tls-worker"
WORKFLOW = {
    "name": "wf",
    "tasks": [{"name": "t", "actions": [{"name": "a", "image": "none", "command": ["echo", "hi"]}]}],
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("other"), name="other")


@pytest.mark.parametrize(
    "flags",
    [{"tls_ca": "/x/ca.pem"}, {"tls_cert": "c", "tls_key": "k"}, {"tls_server_name": "tink.example"}],
    ids=["ca", "cert-key", "server-name"],
)
def test_any_tls_option_turns_tls_on(flags: dict[str, str]) -> None:
    assert load_settings(flags, environ={}).tls.enabled is True
    assert load_settings({**flags, "tls": False}, environ={}).tls.enabled is True  # never plaintext
    assert load_settings({}, environ={}).tls.enabled is False


def test_tls_ca_urls_are_kept_as_urls_and_file_urls_become_paths(tmp_path: Path) -> None:
    http_ca = load_settings({"tls_ca": "http://10.0.0.5:42114/cert"}, environ={}).tls
    assert (http_ca.ca_url, http_ca.ca_file) == ("http://10.0.0.5:42114/cert", None)
    file_ca = load_settings({"tls_ca": f"file://{tmp_path}/ca.pem"}, environ={}).tls
    assert (file_ca.ca_url, file_ca.ca_file) == (None, tmp_path / "ca.pem")


def _settings(**files: Path | None) -> TlsSettings:
    return TlsSettings(enabled=True, **files)  # type: ignore[arg-type]


def test_good_files_are_read_once_at_start(pki: TestPki) -> None:
    tls = load_tls(
        _settings(ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key), threading.Event()
    )
    assert tls.ca_pem == pki.ca_cert.read_bytes()
    assert tls.key_pem == pki.client_key.read_bytes()
    assert "PRIVATE" not in repr(tls)


def _bad_files(pki: TestPki, other: TestPki, directory: Path) -> dict[str, tuple[dict[str, Path], str]]:
    empty = directory / "empty.pem"
    empty.write_text("\n")
    garbage = directory / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    broken = directory / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    broken_key = directory / "broken.key"
    broken_key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    encrypted = directory / "encrypted.key"
    subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(pki.client_key),
            "-aes256",
            "-passout",
            "pass:pw",
            "-out",
            str(encrypted),
        ],
        check=True,
        capture_output=True,
    )
    client = {"cert_file": pki.client_cert, "key_file": pki.client_key}
    return {
        "empty-ca": ({"ca_file": empty}, r"--tls-ca file '.*empty.pem' is empty"),
        "garbage-ca": ({"ca_file": garbage}, r"--tls-ca file .* holds no PEM certificate"),
        "broken-ca": ({"ca_file": broken}, r"--tls-ca file .* is not a readable PEM certificate"),
        "missing-ca": ({"ca_file": directory / "absent.pem"}, r"cannot read --tls-ca file .*: No such file"),
        "garbage-cert": ({**client, "cert_file": garbage}, r"--tls-cert file .* holds no PEM certificate"),
        "empty-key": (
            {**client, "key_file": empty},
            r"--tls-key file the value given \(\d+ characters, not shown\) is empty",
        ),
        "broken-key": (
            {**client, "key_file": broken_key},
            r"--tls-key file is not a readable PEM private key",
        ),
        "encrypted-key": ({**client, "key_file": encrypted}, r"--tls-key file is encrypted"),
        "mismatch": (
            {"cert_file": pki.client_cert, "key_file": other.client_key},
            r"--tls-key does not match the certificate in --tls-cert",
        ),
        "cert-alone": ({"cert_file": pki.client_cert}, r"--tls-cert and --tls-key must be given together"),
    }


def test_each_bad_file_is_one_line_at_start(pki: TestPki, other_pki: TestPki, tmp_path: Path) -> None:
    for name, (files, expected) in _bad_files(pki, other_pki, tmp_path).items():
        with pytest.raises(ConfigError, match=expected) as raised:
            load_tls(_settings(**files), threading.Event())
        message = str(raised.value)
        assert "\n" not in message, name
        assert "PRIVATE KEY" not in message and "bm90" not in message, name


def _worker(address: str, *extra: str, environ: dict[str, str] | None = None) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "tinklet_core", "-p", "tinklet_core.testing.process_runtime",
        "--runtime", "process", "--tink", address, "--identifier", AGENT, "--max-backoff", "0.3", *extra,
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if not key.startswith("TINKLET_")}
    env.update(environ or {})
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_a_key_pasted_in_place_of_its_path_is_never_printed(pki: TestPki) -> None:
    key_text = pki.client_key.read_text()
    body = key_text.splitlines()[1]
    for extra, environ in [
        (("--tls-cert", str(pki.client_cert), "--tls-key", key_text), {}),
        (("--tls-cert", str(pki.client_cert)), {"TINKLET_TLS_KEY": key_text}),
    ]:
        process = _worker("127.0.0.1:9", *extra, environ=environ)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            "tinklet: error: cannot read --tls-key file the value given"
        )
        assert body not in stdout + stderr and "PRIVATE KEY" not in stdout + stderr


def test_a_bad_ca_file_ends_the_worker_at_start_with_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "ca.pem"
    empty.write_text("")
    process = _worker("127.0.0.1:9", "--tls-ca", str(empty))
    _stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.strip() == f"tinklet: error: --tls-ca file '{empty}' is empty"


class _CertHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path != "/cert":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class CertServer:
    """A plain-HTTP server publishing a CA at /cert, as old Tink servers do on port 42114."""

    def __init__(self, body: bytes, port: int = 0) -> None:
        handler = type("Handler", (_CertHandler,), {"body": body})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/cert"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cert_server(pki: TestPki) -> Iterator[CertServer]:
    server = CertServer(pki.ca_cert.read_bytes())
    yield server
    server.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_ca_url_is_fetched_at_start(pki: TestPki, cert_server: CertServer) -> None:
    tls = load_tls(TlsSettings(ca_url=cert_server.url), threading.Event())
    assert tls.ca_pem == pki.ca_cert.read_bytes()


def test_a_file_url_is_read_like_a_path(pki: TestPki) -> None:
    tls = load_settings({"tls_ca": pki.ca_cert.as_uri()}, environ={}).tls
    assert load_tls(tls, threading.Event()).ca_pem == pki.ca_cert.read_bytes()


def test_an_unreachable_ca_url_is_retried_until_it_answers(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()
    late: list[CertServer] = []
    timer = threading.Timer(1.0, lambda: late.append(CertServer(pki.ca_cert.read_bytes(), port)))
    timer.start()
    try:
        started = time.monotonic()
        tls = load_tls(
            TlsSettings(ca_url=f"http://127.0.0.1:{port}/cert"), threading.Event(), max_backoff=0.3
        )
        assert time.monotonic() - started >= 0.9
    finally:
        timer.join()
        for server in late:
            server.close()
    assert tls.ca_pem == pki.ca_cert.read_bytes()
    assert caplog.text.count("cannot fetch the TLS CA") == 1  # logged once, not once per retry


def test_stopping_while_the_ca_url_is_unreachable_ends_the_wait() -> None:
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(ActionInterrupted):
        load_tls(TlsSettings(ca_url=f"http://127.0.0.1:{_free_port()}/cert"), stop, max_backoff=0.2)


def test_a_ca_url_that_answers_wrong_fails_closed(cert_server: CertServer) -> None:
    with pytest.raises(ConfigError, match=r"--tls-ca http://127.0.0.1:\d+/nothing answered HTTP 404"):
        load_tls(TlsSettings(ca_url=cert_server.url.replace("/cert", "/nothing")), threading.Event())
    garbage = CertServer(b"<html>hello</html>")
    try:
        with pytest.raises(ConfigError, match=r"the CA fetched from --tls-ca .* holds no PEM certificate"):
            load_tls(TlsSettings(ca_url=garbage.url), threading.Event())
    finally:
        garbage.close()


def test_the_worker_trusts_a_ca_fetched_from_the_server(pki: TestPki, cert_server: CertServer) -> None:
    tls = ServerTls.from_files(pki.server_cert, pki.server_key)
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT, tls=tls) as server:
        process = _worker(server.address, "--tls-ca", cert_server.url)
        done = server.wait_until(lambda: State.SUCCESS in server.states_of("t/a"), timeout=30)
        process.terminate()
        _stdout, stderr = process.communicate(timeout=15)
    assert done, stderr
    assert "(TLS)" in stderr


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _expired_server_cert(pki: TestPki, directory: Path) -> tuple[Path, Path]:
    """A server certificate from ``pki``'s CA that expired in 2020."""
    key, csr, cert = directory / "expired.key", directory / "expired.csr", directory / "expired.crt"
    database = directory / "db"
    database.mkdir()
    (database / "index").write_text("")
    (database / "serial").write_text("01\n")
    config = directory / "ca.cnf"
    config.write_text(
        f"[ca]\ndefault_ca = d\n[d]\ndatabase = {database}/index\nserial = {database}/serial\n"
        f"new_certs_dir = {database}\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n"
        "[ext]\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=expired"
    )
    _openssl(
        "ca", "-batch", "-config", str(config), "-cert", str(pki.ca_cert), "-keyfile", str(pki.ca_key),
        "-in", str(csr), "-out", str(cert), "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
        "-extensions", "ext", "-notext",
    )  # fmt: skip
    return cert, key


def test_verification_failures_are_named(pki: TestPki, other_pki: TestPki, tmp_path: Path) -> None:
    trusting = load_tls(TlsSettings(ca_file=pki.ca_cert), threading.Event())
    with TinkServer([], AGENT, tls=ServerTls.from_files(pki.server_cert, pki.server_key)) as server:
        assert verification_failure(server.address, trusting) is None
        wrong_ca = load_tls(TlsSettings(ca_file=other_pki.ca_cert), threading.Event())
        assert "unable to get local issuer certificate" in (
            verification_failure(server.address, wrong_ca) or ""
        )
        wrong_name = load_tls(TlsSettings(ca_file=pki.ca_cert, server_name="tink.example"), threading.Event())
        assert "Hostname mismatch" in (verification_failure(server.address, wrong_name) or "")
    cert, key = _expired_server_cert(pki, tmp_path)
    with TinkServer([], AGENT, tls=ServerTls.from_files(cert, key)) as server:
        assert verification_failure(server.address, trusting) == "certificate has expired"


def test_the_worker_names_an_expired_server_certificate_and_keeps_trying(
    pki: TestPki, tmp_path: Path
) -> None:
    cert, key = _expired_server_cert(pki, tmp_path)
    with TinkServer(
        [parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT, tls=ServerTls.from_files(cert, key)
    ) as server:
        process = _worker(server.address, "--tls-ca", str(pki.ca_cert))
        time.sleep(2.0)
        still_running = process.poll() is None
        process.terminate()
        _stdout, stderr = process.communicate(timeout=15)
        assert server.reports == []
    assert still_running, stderr
    assert (
        f"tink server {server.address}: its TLS certificate fails verification: certificate has expired"
        in stderr
    )
