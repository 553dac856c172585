"""A registry's HTTP API (distribution v2), as far as pulling needs it, with its logins.

Each request goes to one :class:`~tinklet_containerd.hosts.RegistryHost` (TLS as its
``hosts.toml`` says; through tinklet's proxy unless ``--no-proxy`` names the host). A 401 is
answered as the registry asks (``WWW-Authenticate``): ``Basic`` with the login, or ``Bearer``:
a token from the realm (with the login, when there is one, else anonymously), then the request
again with it; the token is kept for the repository's later requests. A redirect to another
host (blob storage, a CDN) is followed without the registry's ``Authorization``.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.client import HTTPResponse
from typing import Any

from tinklet_containerd.hosts import RegistryHost
from tinklet_core.model import RegistryCredentials
from tinklet_core.proxy import ProxySettings
from tinklet_core.runtime_helpers import one_line

MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
#: Seconds to wait for a registry to connect or send the next bytes.
READ_TIMEOUT = 60.0
CHUNK = 1024 * 1024
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryFailure(Exception):
    """A request failed; ``str()`` is the registry's (or the network's) one-line reason."""


def _no_proxy_matches(host: str, no_proxy: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    for entry in (part.strip().lower() for part in no_proxy.split(",")):
        if entry == "*" or entry in (host.lower(), name.lower()):
            return True
        if entry and (name.lower().endswith(entry if entry.startswith(".") else f".{entry}")):
            return True
    return False


def registry_errors(body: bytes) -> str:
    """The messages of a registry's ``{"errors": [{"code", "message"}]}`` body, else the text."""
    try:
        document = json.loads(body)
        errors = document.get("errors") or []
        words = "; ".join(f"{e.get('code', '').lower()}: {e.get('message', '')}".strip(": ") for e in errors)
        return words or one_line(body.decode("utf-8", "replace"))[:200]
    except (ValueError, AttributeError):
        return one_line(body.decode("utf-8", "replace"))[:200]


class SameHostAuthorization(urllib.request.HTTPRedirectHandler):
    """Follows redirects (a registry sends blobs from its storage or a CDN), but never takes the
    registry's ``Authorization`` along to another host: a login or token is for the registry."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        """The redirected request, without ``Authorization`` when it leaves the host."""
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            redirected is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            redirected.remove_header("Authorization")
        return redirected


class RegistryClient:
    """Requests to one host for one repository, authenticated as the registry asks."""

    def __init__(
        self,
        host: RegistryHost,
        repository: str,
        credentials: RegistryCredentials | None,
        proxy: ProxySettings | None = None,
    ) -> None:
        self.host = host
        self.repository = repository
        self.credentials = credentials
        self._authorization: str | None = None
        context = ssl.create_default_context()
        if host.skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        for ca in host.ca_files:
            context.load_verify_locations(cafile=ca)
        for cert, key in host.client_certs:
            context.load_cert_chain(cert, key)
        proxies: dict[str, str] = {}
        proxy = proxy or ProxySettings()
        if not _no_proxy_matches(host.host, proxy.no_proxy):
            proxies = {scheme: url for scheme, url in (("http", proxy.http), ("https", proxy.https)) if url}
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(proxies),
            urllib.request.HTTPSHandler(context=context),
            SameHostAuthorization(),
        )

    def _open(self, path: str, accept: str | None) -> HTTPResponse:
        request = urllib.request.Request(f"{self.host.url}/{self.repository}/{path}")
        for name, value in self.host.headers:
            request.add_header(name, value)
        if accept:
            request.add_header("Accept", accept)
        if self._authorization:
            request.add_header("Authorization", self._authorization)
        response: HTTPResponse = self._opener.open(request, timeout=READ_TIMEOUT)
        return response

    def get(self, path: str, accept: str | None = None) -> HTTPResponse:
        """``GET /v2/REPOSITORY/PATH``, logging in once when the registry asks for it."""
        try:
            try:
                return self._open(path, accept)
            except urllib.error.HTTPError as exc:
                if exc.code != 401 or self._authorization:
                    raise
                challenge = exc.headers.get("WWW-Authenticate", "")
                exc.close()
                self._authorization = self._authorize(challenge)
                return self._open(path, accept)
        except urllib.error.HTTPError as exc:
            words = registry_errors(exc.read())
            exc.close()
            raise RegistryFailure(f"{self.host.host}: HTTP {exc.code}: {words}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise RegistryFailure(f"{self.host.host}: {one_line(reason)}") from None

    def _basic(self) -> str:
        if self.credentials is None:
            raise RegistryFailure(f"{self.host.host}: HTTP 401: unauthorized: authentication required")
        pair = f"{self.credentials.username}:{self.credentials.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _authorize(self, challenge: str) -> str:
        """The ``Authorization`` value the challenge asks for."""
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            return self._basic()
        if scheme.lower() != "bearer":
            raise RegistryFailure(f"{self.host.host}: HTTP 401: unsupported authentication {scheme!r}")
        values = dict(_CHALLENGE_PARAM.findall(params))
        realm = values.pop("realm", "")
        if not realm:
            raise RegistryFailure(f"{self.host.host}: HTTP 401: a token is required but no realm is given")
        values.setdefault("scope", f"repository:{self.repository}:pull")
        request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(values)}")
        if self.credentials is not None:
            request.add_header("Authorization", self._basic())
        try:
            with self._opener.open(request, timeout=READ_TIMEOUT) as answer:
                document: dict[str, Any] = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            words = registry_errors(exc.read())
            raise RegistryFailure(f"{self.host.host}: token request: HTTP {exc.code}: {words}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise RegistryFailure(f"{self.host.host}: token request: {one_line(reason)}") from None
        token = document.get("token") or document.get("access_token")
        if not token:
            raise RegistryFailure(f"{self.host.host}: token request: no token in the answer")
        return f"Bearer {token}"

    def manifest(self, reference: str) -> tuple[str, bytes]:
        """The media type and bytes of the manifest (or index) ``reference`` (tag or digest)."""
        with self.get(f"manifests/{reference}", MANIFEST_ACCEPT) as response:
            media_type = response.headers.get_content_type()
            return media_type, response.read()

    def blob(self, digest: str) -> Iterator[bytes]:
        """The blob ``digest``, in chunks."""
        with self.get(f"blobs/{digest}") as response:
            while chunk := response.read(CHUNK):
                yield chunk
