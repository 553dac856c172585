"""A Kubernetes API server for tests, whose pods run for real on the local dockerd.

No real Kubernetes can be installed on tinklet's test machines, so this server speaks the REST
API (JSON bodies, chunked watch and log streams) for exactly what the kube runtime uses, and the
official client runs unchanged against it through the kubeconfig file it writes::

    with KubeTestServer() as server:
        runtime = KubeRuntime(RuntimeSettings(options={"kubeconfig": str(server.kubeconfig)}))

What it serves (namespaces in ``namespaces``; as on a real server, a list or watch in a
namespace that does not exist answers 200 with nothing in it, and only a create says 404):

- ``/api``, ``/apis``, ``/version``: minimal discovery;
- ``/apis/batch/v1/namespaces/NS/jobs[/NAME]``: create (validated, 422 ``Invalid``; with
  ``dryRun=All`` checked for namespace, RBAC and admission and not stored), get, list and
  watch (``labelSelector``, ``fieldSelector=metadata.name=…``), delete with
  ``propagationPolicy`` (query or ``DeleteOptions`` body); see :mod:`.controller`;
- ``/api/v1/namespaces/NS/pods[/NAME[/log]]``: get, list, watch, delete; ``log`` with
  ``tailLines=N`` gives the last lines, with ``follow=true`` it streams the container's output as
  it is written; see :mod:`.kubelet`;
- ``/api/v1/namespaces/NS/secrets[/NAME]``: create, get, list, replace (PUT), delete;
- ``/api/v1/namespaces/NS/events``: get and list (``fieldSelector=involvedObject.name=…``), the
  Job controller's ``FailedCreate`` warnings.

Watches follow the API's rules: ``resourceVersion`` unset or ``0`` starts with synthetic
``ADDED`` events for what exists; a version still in the change log resumes exactly after it;
an older one gets an ``ERROR`` event with a 410 ``Expired`` Status; ``timeoutSeconds`` ends the
stream. Errors are ``Status`` objects with the real codes (401, 403, 404, 405, 409, 410, 422).
Requests must carry the bearer token written into the kubeconfig. ``behaviour`` holds the
switches that make it harsher (see :mod:`.behaviour`); :meth:`KubeTestServer.go_away` /
:meth:`~KubeTestServer.come_back` restart the control plane (the state survives, open streams do
not) and :meth:`~KubeTestServer.answer_errors` answers 503 or 429 for a while.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import select
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tinklet_kube_testing.behaviour import ServerBehaviour
from tinklet_kube_testing.controller import JobController
from tinklet_kube_testing.kubelet import CONTAINER_LABEL, DockerKubelet
from tinklet_kube_testing.store import ObjectStore, Selector, StatusError, bad_request, not_found
from tinklet_kube_testing.validation import drop_sidecar_fields, validate_job, validate_secret

JSON = dict[str, Any]
log = logging.getLogger("tinklet.kube.testserver")
_ROUTES = (
    (re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/(jobs)(?:/([^/]+))?$"), "batch/v1"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/(pods|secrets|events)(?:/([^/]+))?(/log)?$"), "v1"),
)
_KINDS = {"jobs": "Job", "pods": "Pod", "secrets": "Secret", "events": "Event"}
_GROUPS = {"jobs": "batch"}
USER = "tinklet-test"
_DISCOVERY: dict[str, JSON] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "batch",
                "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
            }
        ],
    },
    "/version": {
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.0-tinklet-test",
        "platform": "linux/amd64",
    },
}
DEFAULT_WATCH_SECONDS = 1800


class KubeTestServer:
    """The API server, its store, its Job controller and its docker kubelet, on 127.0.0.1."""

    def __init__(
        self,
        *,
        docker_url: str = "unix:///var/run/docker.sock",
        namespaces: tuple[str, ...] = ("default",),
        token: str = "tinklet-test-token",
        history: int = 2000,
        context_namespace: str = "default",
    ) -> None:
        self.server_id = uuid.uuid4().hex[:12]
        self.namespaces = namespaces
        self.token = token
        self.behaviour = ServerBehaviour()
        self.store = ObjectStore(history=history)
        self.controller = JobController(self.store, self.behaviour)
        self.kubelet = DockerKubelet(
            self.store, self.server_id, self.controller.pod_finished, docker_url, self.behaviour
        )
        self.controller.kubelet = self.kubelet
        self._workdir = Path(tempfile.mkdtemp(prefix="tinklet-kube-testserver-"))
        self._http, self._thread = self._listen(0)
        self._port = int(self._http.server_address[1])
        self._serving = False
        self.kubeconfig = self._workdir / "kubeconfig"
        self._write_kubeconfig(context_namespace)

    def _listen(self, port: int) -> tuple[_HttpServer, threading.Thread]:
        http = _HttpServer(("127.0.0.1", port), _Handler)
        http.api = self
        thread = threading.Thread(target=http.serve_forever, name="kube-test-apiserver", daemon=True)
        return http, thread

    @property
    def url(self) -> str:
        """The server's base URL (the same across :meth:`go_away` and :meth:`come_back`)."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def container_label(self) -> tuple[str, str]:
        """The docker label (key, value) on every container this server runs."""
        return CONTAINER_LABEL, self.server_id

    def _write_kubeconfig(self, namespace: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "tinklet-test", "cluster": {"server": self.url}}],
            "users": [{"name": "tinklet-test", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "tinklet-test",
                    "context": {"cluster": "tinklet-test", "user": "tinklet-test", "namespace": namespace},
                }
            ],
            "current-context": "tinklet-test",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))

    def start(self) -> KubeTestServer:
        """Serve in a background thread."""
        self._thread.start()
        self._serving = True
        return self

    def go_away(self) -> None:
        """Stop answering, as the API server of a control plane that restarts: its port refuses
        connections and every open watch and log stream is cut. The store lives on (etcd survives
        a control-plane restart), and so do the Job controller and the pods' containers (the
        kubelet keeps them running)."""
        if not self._serving:
            return
        self._serving = False
        self._http.shutdown()
        self._http.server_close()
        self._http.cut_streams()
        self._thread.join()

    def come_back(self) -> None:
        """Answer again on the same port, with the state the store kept. Like a restarted API
        server's watch cache, the change log starts afresh: a watch resumed from a version of
        before the restart gets 410 Gone."""
        if self._serving:
            return
        self.store.compact()
        self._http, self._thread = self._listen(self._port)
        self.start()

    def answer_errors(self, status: int, seconds: float, retry_after: int = 1) -> None:
        """Answer every request with ``status`` (503, 429) and ``Retry-After: retry_after`` for
        ``seconds``, as an API server failing over behind a load balancer (or shedding load)
        does; the watches and log streams open now are cut, as the failover cuts them."""
        self.behaviour.retry_after = retry_after
        self.behaviour.unavailable = (status, time.monotonic() + seconds)
        self._http.cut_streams()

    def stop(self) -> None:
        """Stop serving, end every watch, remove every container and the kubeconfig."""
        self.store.close()
        if self._serving:
            self._serving = False
            self._http.shutdown()
            self._http.server_close()
        self.controller.close()
        self.kubelet.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> KubeTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    api: KubeTestServer

    def server_bind(self) -> None:
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def cut_streams(self) -> None:
        """Close every open connection under its handler (the client sees the stream end)."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # Dispatch ---------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        body = self._body()
        try:
            unavailable = api.behaviour.unavailable
            if unavailable is not None and time.monotonic() < unavailable[1]:
                raise _unavailable(unavailable[0])
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                raise StatusError(401, "Unauthorized", "Unauthorized")
            if method == "GET" and url.path in _DISCOVERY:
                self._send_json(200, _DISCOVERY[url.path])
                return
            for pattern, version in _ROUTES:
                match = pattern.match(url.path)
                if match:
                    groups = (*match.groups(), None)
                    namespace, resource = str(groups[0]), str(groups[1])
                    name, sub = groups[2], groups[3]
                    self._authorize(_verb(method, name, sub, query), resource, sub, namespace)
                    self._route(method, version, resource, namespace, name, sub, query, body)
                    return
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        except StatusError as exc:
            retry = {"Retry-After": str(api.behaviour.retry_after)} if exc.code in (429, 503) else {}
            self._send_json(exc.code, exc.status(), retry)

    def _authorize(self, verb: str, resource: str, sub: str | None, namespace: str) -> None:
        if (verb, resource + (sub or "")) not in self.server.api.behaviour.forbidden:
            return
        group = _GROUPS.get(resource, "")
        full = f"{resource}.{group}" if group else resource
        what = f"{resource}{sub or ''}"
        raise StatusError(
            403,
            "Forbidden",
            f'{full} is forbidden: User "{USER}" cannot {verb} resource "{what}" in API group '
            f'"{group}" in the namespace "{namespace}"',
            {"kind": resource, "group": group},
        )

    def _body(self) -> JSON:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            parsed = json.loads(self.rfile.read(length))
        except ValueError:
            return {"__invalid__": True}
        return parsed if isinstance(parsed, dict) else {"__invalid__": True}

    def _route(
        self,
        method: str,
        version: str,
        resource: str,
        namespace: str,
        name: str | None,
        sub: str | None,
        query: dict[str, str],
        body: JSON,
    ) -> None:
        api = self.server.api
        store = api.store
        if body.get("__invalid__"):
            raise bad_request("the request body is not a JSON object")
        if sub == "/log":
            if resource != "pods" or method != "GET" or name is None:
                raise StatusError(405, "MethodNotAllowed", "the server does not allow this method")
            tail = query.get("tailLines")
            if tail is not None and not tail.isdigit():
                raise bad_request(f"invalid tailLines {tail!r}")
            self._log(namespace, name, query.get("follow") in ("true", "1"), int(tail) if tail else None)
            return
        if name is None and method == "GET":
            selector = Selector(query.get("labelSelector"), query.get("fieldSelector"))
            if query.get("watch") in ("true", "1"):
                self._watch(resource, namespace, selector, query)
            else:
                items, current = store.list(resource, namespace, selector)
                self._send_json(
                    200,
                    {
                        "kind": f"{_KINDS[resource]}List",
                        "apiVersion": version,
                        "metadata": {"resourceVersion": str(current)},
                        "items": items,
                    },
                )
            return
        if name is None and method == "POST":
            self._create(resource, namespace, body, query.get("dryRun") == "All")
            return
        if name is not None and method == "GET":
            self._send_json(200, store.get(resource, namespace, name))
            return
        if name is not None and method == "DELETE":
            if query.get("dryRun") == "All":
                self._send_json(200, store.get(resource, namespace, name))
            else:
                self._delete(resource, namespace, name, query, body)
            return
        if name is not None and method == "PUT" and resource == "secrets":
            if str(body.get("metadata", {}).get("name") or "") != name:
                raise bad_request("the name of the object does not match the name on the URL")
            validate_secret(body)
            self._send_json(200, store.replace(resource, namespace, name, body))
            return
        raise StatusError(405, "MethodNotAllowed", f"the server does not allow {method} on {resource} here")

    # Verbs ------------------------------------------------------------------------------------

    def _create(self, resource: str, namespace: str, body: JSON, dry_run: bool) -> None:
        api = self.server.api
        wanted = body.get("metadata", {}).get("namespace")
        if wanted and wanted != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if namespace not in api.namespaces:
            raise not_found("namespaces", namespace)
        if resource == "jobs" and api.behaviour.refuse_jobs:
            name = body.get("metadata", {}).get("name")
            raise StatusError(
                400,
                "BadRequest",
                f'admission webhook "policy.tinklet.test" denied the request: {api.behaviour.refuse_jobs}',
                {"name": name, "group": "batch", "kind": "jobs"},
            )
        if resource == "jobs" and api.behaviour.no_sidecars:
            drop_sidecar_fields(body)
        if dry_run:
            if resource == "jobs":
                validate_job(body)
            self._send_json(201, body)
        elif resource == "jobs":
            self._send_json(201, api.controller.create_job(namespace, body))
        elif resource == "secrets":
            validate_secret(body)
            self._send_json(201, api.store.create(resource, namespace, body))
        else:
            raise StatusError(405, "MethodNotAllowed", "the test API server makes pods from Jobs only")

    def _delete(self, resource: str, namespace: str, name: str, query: dict[str, str], body: JSON) -> None:
        api = self.server.api
        policy = query.get("propagationPolicy") or body.get("propagationPolicy")
        if resource == "jobs":
            self._send_json(200, api.controller.delete_job(namespace, name, policy))
        elif resource == "pods":
            pod = api.store.get(resource, namespace, name)
            threading.Thread(target=api.kubelet.delete_pod, args=(namespace, name), daemon=True).start()
            self._send_json(200, pod)
        else:
            removed = api.store.remove(resource, namespace, name)
            self._send_json(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "kind": resource, "uid": removed["metadata"].get("uid")},
                },
            )

    def _watch(self, resource: str, namespace: str, selector: Selector, query: dict[str, str]) -> None:
        store = self.server.api.store
        requested = query.get("resourceVersion") or ""
        if requested not in ("", "0") and not requested.isdigit():
            raise bad_request(f"invalid resource version {requested!r}")
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        deadline = time.monotonic() + timeout
        self._start_stream("application/json")
        if requested in ("", "0"):
            items, version = store.list(resource, namespace, selector)
            events: Iterator[tuple[str, JSON]] = iter([("ADDED", item) for item in items])
            if not self._send_events(events):
                return
        else:
            version = int(requested)
        while not store.closed and time.monotonic() < deadline:
            try:
                changes, latest = store.changes_after(
                    version, resource, namespace, min(0.5, deadline - time.monotonic())
                )
            except StatusError as exc:
                self._send_events(iter([("ERROR", exc.status())]))
                break
            version = latest
            lag = self.server.api.behaviour.watch_lag.get(resource, 0.0)
            if changes and lag > 0:  # each change goes out ``lag`` seconds after it happened
                time.sleep(max(0.0, changes[-1].at + lag - time.monotonic()))
            wanted = ((change.type, change.obj) for change in changes if selector.matches(change.obj))
            if not self._send_events(wanted) or self._client_gone():
                return
        self._end_stream()

    def _send_events(self, events: Iterator[tuple[str, JSON]]) -> bool:
        for kind, obj in events:
            if not self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n"):
                return False
        return True

    def _log(self, namespace: str, name: str, follow: bool, tail: int | None) -> None:
        api = self.server.api
        api.store.get("pods", namespace, name)
        chunks, stop = api.kubelet.logs(namespace, name, follow, tail)
        cut = api.behaviour.log_cut
        timer = None
        if follow and cut is not None:  # a proxy's idle timeout: the stream ends, the container runs on
            timer = threading.Timer(random.uniform(*cut), stop)
            timer.daemon = True
            timer.start()
        self._start_stream("text/plain")
        try:
            for chunk in chunks:
                if not self._chunk(chunk):
                    return
            self._end_stream()
        except Exception as exc:  # the docker stream was closed under us by the cut
            log.debug("log of %s/%s cut: %s", namespace, name, exc)
            self._end_stream()
        finally:
            if timer is not None:
                timer.cancel()
            stop()

    # HTTP plumbing ----------------------------------------------------------------------------

    def _send_json(self, code: int, payload: JSON, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes) -> bool:
        if not data:
            return True
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return False
        return True

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


def _unavailable(status: int) -> StatusError:
    if status == 429:
        return StatusError(429, "TooManyRequests", "too many requests, please try again later")
    return StatusError(status, "ServiceUnavailable", "the server is currently unable to handle the request")


def _verb(method: str, name: str | None, sub: str | None, query: dict[str, str]) -> str:
    """The RBAC verb of a request."""
    if sub:
        return "get"
    if method == "GET":
        if name is not None:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )
