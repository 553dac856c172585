"""The plugin's pure parts: names, the json log, certs.d hosts, CNI results, redirects."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tinklet_containerd.dnsfiles import private_resolv_conf
from tinklet_containerd.hosts import RegistryHost, registry_hosts
from tinklet_containerd.jsonlog import JsonLogWriter, read_frames
from tinklet_containerd.reference import Reference, normalise

from tinklet_core.containers.engine import STDERR, STDOUT
from tinklet_core.model import RegistryCredentials


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("quay.io/org/tool", "quay.io/org/tool:latest"),
        ("127.0.0.1:5000/x/y:1", "127.0.0.1:5000/x/y:1"),
        ("org/tool@sha256:ab", "docker.io/org/tool@sha256:ab"),
    ],
)
def test_references_are_normalised_as_containerd_names_them(given: str, expected: str) -> None:
    assert normalise(given) == expected


def test_a_reference_splits_into_registry_repository_and_object() -> None:
    assert Reference.parse("127.0.0.1:5000/x/y:1") == Reference("127.0.0.1:5000", "x/y", "1")
    assert Reference.parse("tool@sha256:ab").object == "sha256:ab"


def test_the_json_log_reads_back_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    writer = JsonLogWriter(path)
    writer.write(STDOUT, b"plain line\nsecond ")
    writer.write(STDERR, b'quote " back\\slash \t tab \xc3\xa9\n')
    writer.write(STDOUT, b"half\nno newline at the end")
    writer.close()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "plain line\n"),
        ("stderr", 'quote " back\\slash \t tab é\n'),
        ("stdout", "second half\n"),
        ("stdout", "no newline at the end"),
    ]
    assert b"".join(payload for stream, payload in read_frames(path) if stream == STDOUT) == (
        b"plain line\nsecond half\nno newline at the end"
    )


def test_hosts_toml_orders_mirrors_before_the_server(tmp_path: Path) -> None:
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io" / "hosts.toml").write_text(
        'server = "https://registry-1.docker.io"\n'
        '[host."https://mirror.test:5000"]\n  capabilities = ["pull", "resolve"]\n  ca = "/ca.pem"\n'
        '[host."http://push-only.test"]\n  capabilities = ["push"]\n'
        '[host."http://insecure.test:80/base"]\n  override_path = true\n  skip_verify = true\n'
    )
    hosts = registry_hosts("docker.io", str(tmp_path))
    assert [(h.url, h.ca_files, h.skip_verify) for h in hosts] == [
        ("https://mirror.test:5000/v2", ("/ca.pem",), False),
        ("http://insecure.test:80/base", (), True),
        ("https://registry-1.docker.io/v2", (), False),
    ]
    assert registry_hosts("other.test", str(tmp_path)) == [RegistryHost("https://other.test/v2")]


def test_a_broken_hosts_toml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "r.test").mkdir()
    (tmp_path / "r.test" / "hosts.toml").write_text("server = [")
    with pytest.raises(Exception, match=r"cannot read .*hosts\.toml") as raised:
        registry_hosts("r.test", str(tmp_path))
    assert "\n" not in str(raised.value)


def test_loopback_name_servers_are_not_given_to_a_private_network() -> None:
    host = "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n"
    assert private_resolv_conf(host) == "search lan\nnameserver 10.0.0.2\n"
    assert "nameserver 8.8.8.8" in private_resolv_conf("nameserver 127.0.0.53\n")


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]]
    redirect_to = ""

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.redirect_to and "/blobs/" in self.path and self.headers.get("Authorization"):
            self.send_response(307)
            self.send_header("Location", f"{self.redirect_to}/storage/blob")
            self.end_headers()
            return
        if self.path.endswith("/blob"):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"blob bytes")
            return
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    storage = ThreadingHTTPServer(("127.0.0.1", 0), type("Storage", (_Recorder,), {"seen": seen}))
    redirect = f"http://127.0.0.1:{storage.server_port}"
    registry = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Registry", (_Recorder,), {"seen": seen, "redirect_to": redirect})
    )
    for server in (storage, registry):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield registry, storage, seen
    for server in (storage, registry):
        server.shutdown()
        server.server_close()


def test_a_redirect_to_another_host_does_not_take_the_login_along(
    servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer, list[tuple[str, str | None]]],
) -> None:
    from tinklet_containerd.registry import RegistryClient

    registry, _storage, seen = servers
    host = RegistryHost(f"http://127.0.0.1:{registry.server_port}/v2")
    client = RegistryClient(host, "x/y", RegistryCredentials("r", "user", "secret-password"))
    assert b"".join(client.blob("sha256:ab")) == b"blob bytes"
    assert [path for path, _ in seen] == [
        "/v2/x/y/blobs/sha256:ab",
        "/v2/x/y/blobs/sha256:ab",
        "/storage/blob",
    ]
    assert seen[0][1] is None and str(seen[1][1]).startswith("Basic "), "the registry gets the login"
    assert seen[2][1] is None, "the storage host must not get the registry's login"
