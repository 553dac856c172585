"""The few Kubernetes API calls the kube runtime makes, with plain dicts in and out.

This is the only module that imports the kubernetes client, and only the runtime's constructor
imports it: loading tinklet or listing plugins never pays for the client. Configuration is loaded
explicitly (never ``config.load_config()``, which prints) into a fresh ``Configuration`` of our
own, so the client's process-wide default is never touched.

Responses are read raw (``_preload_content=False``) and parsed as JSON: the rest of the plugin
works on the API's own field names (``status.containerStatuses``) with no model classes, and
watches and logs stream with bounded memory.

urllib3's own retries are off (they log a "Retrying" warning per attempt): a call that cannot
connect is tried again here, quietly, and fails with one line; callers that ride out an API
outage retry that (see :mod:`tinklet_kube.retry`). :attr:`KubeApi.outage` logs each outage once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import SERVICE_TOKEN_FILENAME, load_incluster_config
from kubernetes.config.kube_config import list_kube_config_contexts, load_kube_config

from tinklet_core.errors import RuntimeUnavailable
from tinklet_core.log_safe import loggable
from tinklet_core.redaction import described_value, without_value
from tinklet_kube.errors import KubeApiError
from tinklet_kube.retry import OutageLog

DEFAULT_KUBECONFIG = "~/.kube/config"
# (connect, read) seconds for ordinary calls; streams have no read timeout and are closed instead.
REQUEST_TIMEOUT = (10.0, 60.0)
CONNECT_TIMEOUT = 10.0
# Calls that could not connect are tried this many times in all, this far apart (seconds).
CONNECT_ATTEMPTS = 3
CONNECT_BACKOFF = 0.3
JSON = dict[str, Any]
log = logging.getLogger("tinklet.kube")


def load_configuration(kubeconfig: str | None) -> tuple[client.Configuration, str | None]:
    """A client configuration from ``kubeconfig``, else in-cluster, else ``~/.kube/config``, and
    the namespace that configuration names (the current context's, or the pod's own), if any.

    ``kubeconfig`` may list several files separated by ``:`` (like ``KUBECONFIG``); they are
    merged as kubectl merges them. Raises :class:`RuntimeUnavailable` with one line saying what
    was tried.
    """
    configuration = client.Configuration()
    configuration.retries = False
    if kubeconfig:
        return configuration, _load_files(kubeconfig, configuration)
    try:
        load_incluster_config(client_configuration=configuration)
        return configuration, _pod_namespace()
    except ConfigException:
        pass
    default = Path(DEFAULT_KUBECONFIG).expanduser()
    if not default.is_file():
        raise RuntimeUnavailable(
            f"no Kubernetes configuration: not running in a pod and {default} does not exist "
            "(pass --kubeconfig)"
        )
    return configuration, _load_files(str(default), configuration)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for a name the system refuses (too long: a key pasted as a path)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _load_files(kubeconfig: str, configuration: client.Configuration) -> str | None:
    paths = [Path(part).expanduser() for part in kubeconfig.split(os.pathsep) if part]
    shown = described_value("kubeconfig", kubeconfig, path=True)
    if not any(_is_file(path) for path in paths):
        raise RuntimeUnavailable(f"kubeconfig {shown} does not exist")
    joined = os.pathsep.join(str(path) for path in paths)
    try:
        load_kube_config(config_file=joined, client_configuration=configuration, persist_config=False)
        _contexts, current = list_kube_config_contexts(config_file=joined)
    except (ConfigException, OSError, ValueError) as exc:
        reason = loggable(without_value(str(exc), "kubeconfig", kubeconfig))
        raise RuntimeUnavailable(f"cannot load kubeconfig {shown}: {reason}") from None
    namespace = ((current or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


def _pod_namespace() -> str | None:
    path = Path(SERVICE_TOKEN_FILENAME).with_name("namespace")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class Stream:
    """A streaming response (a watch or a followed log).

    The thread that reads it closes it; any other thread may :meth:`interrupt` it, which makes a
    blocked :meth:`read` return ``b""`` (http.client responses are not safe to close from a thread
    that does not read them).
    """

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self._interrupted = threading.Event()

    def read(self, size: int = 64 * 1024) -> bytes:
        """The next bytes as they arrive; ``b""`` at the end of the stream or once interrupted."""
        if self._interrupted.is_set():
            return b""
        try:
            return self._response.read1(size) or b""
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as exc:
            if self._interrupted.is_set():
                return b""
            raise KubeApiError(f"stream broke: {exc}") from None

    def interrupt(self) -> None:
        """Stop the stream from any thread: the reader's next (or current) read ends it."""
        self._interrupted.set()
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            self._response.shutdown()

    def close(self) -> None:
        """Free the connection (by the reading thread, once it is done reading)."""
        self._interrupted.set()
        with contextlib.suppress(OSError):
            self._response.close()


class KubeApi:
    """Jobs, pods and secrets of one namespace, as dicts; errors are :class:`KubeApiError`."""

    def __init__(self, configuration: client.Configuration, namespace: str) -> None:
        self.namespace = namespace
        self.host = str(configuration.host)
        self.outage = OutageLog(log, self.host)
        self._client = client.ApiClient(configuration)
        self._batch = client.BatchV1Api(self._client)
        self._core = client.CoreV1Api(self._client)

    def close(self) -> None:
        """Close the API client's connections."""
        self._client.close()

    # Jobs -------------------------------------------------------------------------------------

    def create_job(self, manifest: JSON) -> JSON:
        """Create a Job; 409 (it exists) comes back as a :class:`KubeApiError` with ``status``."""
        return self._json(self._batch.create_namespaced_job, self.namespace, manifest)

    def read_job(self, name: str) -> JSON | None:
        """The Job called ``name``, or ``None`` when there is none."""
        try:
            return self._json(self._batch.read_namespaced_job, name, self.namespace)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def dry_run_create_job(self, manifest: JSON) -> JSON:
        """Ask the server whether it would create ``manifest`` (namespace, RBAC, admission,
        validation) without creating anything; the Job as the server would have stored it
        (fields it does not know are dropped)."""
        return self._json(self._batch.create_namespaced_job, self.namespace, manifest, dry_run="All")

    def dry_run_delete_job(self, name: str) -> None:
        """Ask the server whether this client may delete Jobs; a 404 (no such Job) means yes."""
        try:
            self._json(self._batch.delete_namespaced_job, name, self.namespace, dry_run="All")
        except KubeApiError as exc:
            if exc.status != 404:
                raise

    def delete_job(self, name: str) -> bool:
        """Delete a Job and (foreground) its pods; ``False`` when it was already gone."""
        try:
            self._json(
                self._batch.delete_namespaced_job, name, self.namespace, propagation_policy="Foreground"
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # Lists, watches and logs ------------------------------------------------------------------

    def list(
        self,
        kind: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> JSON:
        """A ``jobs``, ``pods`` or ``events`` list (with ``metadata.resourceVersion``) in the
        namespace."""
        return self._json(
            self._lister(kind),
            self.namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
        )

    def watch(
        self,
        kind: str,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Stream:
        """A watch on ``jobs`` or ``pods`` from ``resource_version``; the server ends it after
        ``timeout_seconds``."""
        response = self._call(
            self._lister(kind),
            self.namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            watch=True,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            _request_timeout=(CONNECT_TIMEOUT, timeout_seconds + 30.0),
        )
        return Stream(response)

    def pod_log(self, name: str, container: str, *, follow: bool, tail_lines: int | None = None) -> Stream:
        """The container's output from its start (its last ``tail_lines`` lines only, if given);
        with ``follow``, until the container exits (or something between here and the kubelet
        ends the stream)."""
        response = self._call(
            self._core.read_namespaced_pod_log,
            name,
            self.namespace,
            container=container,
            follow=follow,
            tail_lines=tail_lines,
            _request_timeout=None if follow else REQUEST_TIMEOUT,
        )
        return Stream(response)

    def _lister(self, kind: str) -> Callable[..., Any]:
        listers: dict[str, Callable[..., Any]] = {
            "jobs": self._batch.list_namespaced_job,
            "pods": self._core.list_namespaced_pod,
            "events": self._core.list_namespaced_event,
        }
        return listers[kind]

    # Secrets ----------------------------------------------------------------------------------

    def create_secret(self, manifest: JSON) -> None:
        """Create a Secret. Errors carry the status and reason only: never the API's message,
        which could quote the secret."""
        self._json(self._core.create_namespaced_secret, self.namespace, manifest, quiet=True)

    def replace_secret(self, name: str, manifest: JSON) -> None:
        """Replace the Secret called ``name`` with ``manifest``."""
        self._json(self._core.replace_namespaced_secret, name, self.namespace, manifest, quiet=True)

    def delete_secret(self, name: str) -> bool:
        """Delete a Secret; ``False`` when it was already gone."""
        try:
            self._json(self._core.delete_namespaced_secret, name, self.namespace, quiet=True)
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # Plumbing ---------------------------------------------------------------------------------

    def _json(self, call: Callable[..., Any], *args: Any, quiet: bool = False, **kwargs: Any) -> JSON:
        response = self._call(call, *args, quiet=quiet, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeApiError(f"Kubernetes API {self.host}: {exc}") from None
        finally:
            response.release_conn()
        try:
            parsed = json.loads(data)
        except ValueError:
            raise KubeApiError(f"Kubernetes API {self.host} answered with something not JSON") from None
        return parsed if isinstance(parsed, dict) else {}

    def _call(self, call: Callable[..., Any], *args: Any, quiet: bool = False, **kwargs: Any) -> Any:
        try:
            response = self._attempts(call, *args, quiet=quiet, **kwargs)
        except KubeApiError as exc:
            self.outage.failed(exc)
            raise
        self.outage.answered()
        return response

    def _attempts(self, call: Callable[..., Any], *args: Any, quiet: bool = False, **kwargs: Any) -> Any:
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                return call(*args, _preload_content=False, **kwargs)
            except ApiException as exc:
                raise _api_error(exc, quiet) from None
            except urllib3.exceptions.NewConnectionError as exc:  # nothing was sent: safe to retry
                if attempt == CONNECT_ATTEMPTS:
                    raise KubeApiError(f"Kubernetes API {self.host} is unreachable: {_cause(exc)}") from None
                time.sleep(CONNECT_BACKOFF * attempt)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise KubeApiError(f"Kubernetes API {self.host} is unreachable: {_cause(exc)}") from None
        raise AssertionError("unreachable")


def _api_error(exc: ApiException, quiet: bool) -> KubeApiError:
    status = int(exc.status or 0)
    reason = str(exc.reason or "")
    message = ""
    try:
        body = json.loads(exc.body or "{}")
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or "")
    except ValueError:
        pass
    text = f"{status} {reason}" if quiet or not message else f"{status} {reason}: {message}"
    return KubeApiError(text, status=status, reason=reason, retry_after=_retry_after(exc))


def _retry_after(exc: ApiException) -> float | None:
    """The seconds of the answer's ``Retry-After`` header (the HTTP-date form is not used by
    API servers), ``None`` without one."""
    value = str((exc.headers or {}).get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


def _cause(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)
