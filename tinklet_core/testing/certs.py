"""A throw-away PKI for tests: a CA, a server certificate and a client certificate.

Made with the ``openssl`` command-line tool (no Python crypto dependency), with P-256 keys so it
takes a few milliseconds. The server certificate is valid for ``127.0.0.1`` and ``localhost``;
the client certificate is for mTLS. Nothing here is fit for production use.

Example::

    pki = make_test_pki(tmp_path)
    tls = ServerTls.from_files(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_KEY_ARGS = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


class PkiError(RuntimeError):
    """``openssl`` is missing or refused to make a certificate."""


@dataclass(frozen=True)
class TestPki:
    """Paths of the PEM files :func:`make_test_pki` wrote."""

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_test_pki(directory: Path, *, days: int = 7, name: str = "tinklet test") -> TestPki:
    """Write a CA, a server and a client certificate (with their keys) into ``directory``.

    The server certificate carries ``subjectAltName = IP:127.0.0.1, DNS:localhost``; both
    leaf certificates are signed by the CA. ``name`` goes into each subject, so two PKIs made
    for one test are told apart in error messages.
    """
    if shutil.which("openssl") is None:
        raise PkiError("the openssl command is not installed")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pki = TestPki(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
    _openssl(
        "req", "-x509", *_KEY_ARGS, "-days", str(days),
        "-keyout", str(pki.ca_key), "-out", str(pki.ca_cert),
        "-subj", f"/CN={name} CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _leaf(
        pki, pki.server_cert, pki.server_key, f"{name} server",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", days,
    )  # fmt: skip
    _leaf(pki, pki.client_cert, pki.client_key, f"{name} client", "extendedKeyUsage=clientAuth\n", days)
    return pki


def _leaf(pki: TestPki, cert: Path, key: Path, common_name: str, extensions: str, days: int) -> None:
    """Make a key and a certificate signed by the PKI's CA."""
    csr = cert.with_suffix(".csr")
    ext_file = cert.with_suffix(".ext")
    ext_file.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions
    )
    _openssl("req", "-new", *_KEY_ARGS, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={common_name}")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
        "-CAcreateserial", "-CAserial", str(pki.directory / "ca.srl"),
        "-days", str(days), "-extfile", str(ext_file), "-out", str(cert),
    )  # fmt: skip
    csr.unlink()
    ext_file.unlink()


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PkiError(f"openssl {args[0]} failed: {last}")
