"""The Bearer token flow most registries (Docker Hub among them) use, against a real registry.

Debian's ``docker-registry`` (distribution) is started with ``auth: token``, serving the storage
the session's test registry was pushed to; the token server it names is this module's
:class:`TokenServer`: a small HTTPS issuer of the Docker token specification (a ``GET
/token?service=…&scope=…`` with the user's Basic login answers ``{"token": JWT}``, an RS256 JWT
whose ``x5c`` certificate the registry trusts through ``rootcertbundle``; a wrong login is a 401),
since no token server is packaged in Debian.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from containerd_support import PrivateContainerd, options
from test_containerd_pull import DOCKER_IMAGE, hosts_toml, run

from tinklet_core.model import RegistryCredentials, State
from tinklet_core.testing.certs import make_test_pki
from tinklet_core.testing.registry import TestRegistry

SERVICE = "tinklet-test-registry"
ISSUER = "tinklet-test-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """An HTTPS token issuer for one login, signing with an RSA key of its own."""

    def __init__(self, root: Path, tls_cert: Path, tls_key: Path, username: str, password: str) -> None:
        self.signing_key = root / "signing.key"
        self.signing_cert = root / "signing.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=token signer", "-keyout", str(self.signing_key), "-out", str(self.signing_cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.signing_cert), "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self._x5c = base64.b64encode(der).decode()
        self._login = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.username = username
        self.requests: list[tuple[str, bool]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                authorised = self.headers.get("Authorization") == server._login
                server.requests.append((self.path, authorised))
                if not authorised or query.get("service") != [SERVICE]:
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]}')
                    return
                body = json.dumps({"token": server.token(query.get("scope", [""])[0])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_cert, tls_key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.realm = f"https://127.0.0.1:{self._server.server_port}/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def token(self, scope: str) -> str:
        """A JWT granting ``scope`` (``repository:NAME:pull``)."""
        kind, name, actions = [*scope.split(":"), "", "", ""][:3]
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": ISSUER, "sub": self.username, "aud": SERVICE, "jti": secrets.token_hex(8),
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "access": [{"type": kind, "name": name, "actions": actions.split(",")}] if kind else [],
        }  # fmt: skip
        signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.signing_key)],
            input=signed.encode(), check=True, capture_output=True,
        ).stdout  # fmt: skip
        return f"{signed}.{_b64(signature)}"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def token_registry(registry: TestRegistry, tmp_path: Path) -> Iterator[tuple[str, TokenServer, Path]]:
    """A second registry on the test registry's storage, asking for tokens: its host, the token
    server, and the CA of both (a PKI of its own)."""
    pki = make_test_pki(tmp_path / "pki", name="tinklet token registry")
    tokens = TokenServer(tmp_path, pki.server_cert, pki.server_key, registry.username, registry.password)
    with socket.socket() as probe:  # a free port, closed again for the registry to bind
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    (tmp_path / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {registry.root / 'storage'}\n"
        f"http:\n  addr: {host}\n  secret: {secrets.token_hex(8)}\n"
        f"  tls:\n    certificate: {pki.server_cert}\n    key: {pki.server_key}\n"
        f"auth:\n  token:\n    realm: {tokens.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
        f"    rootcertbundle: {tokens.signing_cert}\n"
    )
    log = (tmp_path / "registry.log").open("wb")
    process = subprocess.Popen(["docker-registry", "serve", str(tmp_path / "config.yml")], stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"https://{host}/v2/", context=context, timeout=2)
            except urllib.error.HTTPError:
                break  # 401: it answers
            except OSError:
                time.sleep(0.05)
        yield host, tokens, pki.ca_cert
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        tokens.close()


def test_a_pull_follows_the_token_flow_with_the_login(
    containerd: PrivateContainerd, agent_id: str, registry: TestRegistry,
    token_registry: tuple[str, TokenServer, Path], tmp_path: Path,
) -> None:  # fmt: skip
    name = f"tinklet-test/token-{uuid.uuid4().hex[:8]}:v1"
    registry.push(DOCKER_IMAGE, name)
    host, tokens, ca = token_registry
    certs = Path(str(options(containerd)["containerd_certs_dir"]))
    hosts_toml(certs, host, f'ca = "{ca}"\n')
    try:
        login = RegistryCredentials(host, registry.username, registry.password)
        outcome, lines, _, _ = run(containerd, agent_id, f"{host}/{name}", login)
        wrong = RegistryCredentials(host, registry.username, "not-the-password")
        refused, _, _, _ = run(containerd, agent_id, f"{host}/{name.replace(':v1', ':v2')}", wrong)
    finally:
        (certs / host / "hosts.toml").unlink()
    assert (outcome.state, lines) == (State.SUCCESS, ["ran"]), outcome.reason
    scope = urllib.parse.quote(f"repository:{name.partition(':')[0]}:pull", safe="")
    assert any(ok and f"scope={scope}" in path for path, ok in tokens.requests), tokens.requests
    assert refused.state is State.FAILED and "token request: HTTP 401" in refused.reason
    assert "not-the-password" not in refused.reason
