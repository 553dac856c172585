"""The Podman engine adapter: the shared container layer's engine calls, made with podman-py.

Each call fails with a one-line :class:`~tinklet_core.containers.engine.EngineFailure`.

This is the only module that imports podman-py; :mod:`tinklet_podman.runtime` imports it when
the runtime is opened, never when plugins are merely listed.

podman-py facts this module works around (podman-py 5.x against Debian's Podman 4.3.1):

- It builds ``/v5.x/libpod/`` URLs from its own version and does not negotiate. Podman accepts
  any version prefix but silently ignores parameters newer than itself, so only long-standing
  parameters are used here.
- ``images.pull`` does not raise when the registry refuses: the failure is an ``{"error": …}``
  event at the end of the stream. The stream is read to its end and the image checked after.
- ``wait`` returns the exit code as an int (docker-py returns a dict). Podman polls the
  container's state for it, every 250 ms unless told otherwise: ``interval`` (known to 4.3.1)
  makes it 50 ms, which took ~70 ms off a ``true`` action here.
- It has no attach. The runtime reads the output from conmon where it can, else with a raw
  streaming request to the service (see :meth:`PodmanEngine.attach`).
- The client has no timeout, because attaching and waiting legitimately block for as long as an
  action runs; short calls that must not hang pass their own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from podman import PodmanClient
from podman.errors import APIError, PodmanError
from requests.exceptions import RequestException

from tinklet_core.containers.engine import (
    ALREADY_GONE,
    EngineFailure,
    OutputStream,
    PullEvents,
    PullFailure,
    failing_as,
    label_filter,
    pull_error,
)
from tinklet_core.containers.frames import ResponseFrames
from tinklet_core.containers.spec import ContainerSpec
from tinklet_core.model import RegistryCredentials
from tinklet_core.redaction import described_value
from tinklet_core.runtime_helpers import innermost_reason, one_line, without_secret
from tinklet_podman.conmon_attach import ConmonAttachment

log = logging.getLogger("tinklet.podman")

PROBE_TIMEOUT = 2.0
SHORT_CALL_TIMEOUT = 60.0
#: How often Podman checks whether a waited-for container exited (its default, 250ms, adds
#: ~70 ms to every action; a state check is cheap for the service).
WAIT_POLL = "50ms"


def probe(url: str) -> str | None:
    """``None`` when a Podman service answers at ``url``, else a short reason why not."""
    failure = probe_failure(url)
    return None if failure is None else innermost_reason(failure)


def probe_failure(url: str) -> Exception | None:
    """``None`` when a Podman service answers at ``url``, else the error saying why not (an
    answer other than 2xx is a ``ConnectionError`` for 5xx, a service that is still starting,
    and a ``ValueError`` for anything else)."""
    try:
        with PodmanClient(base_url=url) as client:
            response = client.api.get("/_ping", timeout=PROBE_TIMEOUT)
            if response.ok:
                return None
            answer = f"HTTP {response.status_code}"
            return ConnectionError(answer) if response.status_code >= 500 else ValueError(answer)
    except (APIError, PodmanError, RequestException, OSError, ValueError) as exc:
        return exc


class PodmanEngine:
    """One Podman service, reached at ``url`` (``unix:///…``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown_url = described_value("podman_socket", url, path=True)  # as errors name it
        self.client = PodmanClient(base_url=url)
        #: Why output is read through the service instead of from conmon (once it had to be).
        self._relayed_because: str | None = None

    def failing_as(
        self, what: str, secret: str | None = None, tolerate: tuple[int, ...] = (), gone: bool = False
    ) -> AbstractContextManager[None]:
        """podman-py's exceptions inside the block become ``EngineFailure("WHAT: reason")``
        (see :func:`tinklet_core.containers.engine.failing_as`)."""
        connection_errors = (PodmanError, RequestException, OSError)
        return failing_as(
            what, secret, api_errors=(APIError,), connection_errors=connection_errors,
            service=f"Podman at {self.shown_url}", tolerate=tolerate, gone=gone, http_status=True,
        )  # fmt: skip

    def ping(self) -> None:
        """Return when the service answers (:class:`EngineUnreachable` when it does not)."""
        with self.failing_as("ping failed"):
            self.client.api.get("/_ping", timeout=PROBE_TIMEOUT).raise_for_status()

    def version(self) -> str:
        """The service's Podman version, for the log."""
        with self.failing_as("version query failed"):
            response = self.client.api.get("/version", timeout=SHORT_CALL_TIMEOUT)
            response.raise_for_status()
            return str(response.json().get("Version", "unknown"))

    def image_present(self, reference: str) -> bool:
        """True when Podman has the image ``reference`` locally."""
        with self.failing_as(f"image lookup failed for {reference}"):
            return bool(self.client.images.exists(reference))

    def image_user(self, reference: str) -> str:
        """The ``Config.User`` of the image ``reference`` (``""``: root)."""
        with self.failing_as(f"image inspect failed for {reference}"):
            config = self.client.images.get(reference).attrs.get("Config") or {}
        return str(config.get("User") or "")

    def pull(
        self, reference: str, credentials: RegistryCredentials | None, on_event: PullEvents | None = None
    ) -> None:
        """Pull ``reference``, handing each stream event to ``on_event``; :class:`PullFailure`
        with the registry's words (never the password) when it fails.

        Without ``credentials`` the pull is anonymous as far as tinklet is concerned (the
        service may still use its own auth file).
        """
        auth = {"username": credentials.username, "password": credentials.password} if credentials else None
        secret = credentials.password if credentials else None
        error = ""
        with self.failing_as("image pull failed", secret):  # an unreachable service is no pull failure
            try:
                events: Iterable[Any] = self.client.images.pull(  # type: ignore[assignment]
                    reference, auth_config=auth, stream=True, decode=True
                )
                for event in events:
                    error = pull_error(event) or error
                    if on_event is not None and isinstance(event, dict):
                        on_event(event)
            except APIError as exc:
                error = str(getattr(exc, "explanation", None) or exc)
            if not error and not self.client.images.exists(reference):
                error = f"{reference} is not present after the pull"
        if error:
            raise PullFailure(without_secret(one_line(error), secret))

    def create(self, spec: ContainerSpec) -> str:
        """Create the container; returns its id."""
        arguments: dict[str, Any] = {
            "name": spec.name,
            "environment": dict(spec.environment),
            "labels": dict(spec.labels),
            "privileged": spec.privileged,
            # k8s-file keeps the complete output until the container is removed; the runtime
            # reads it after exit to make up for any line the live stream missed.
            "log_config": {"Type": "k8s-file"},
        }
        if spec.command:
            arguments["command"] = list(spec.command)
        if spec.cap_add:
            arguments["cap_add"] = list(spec.cap_add)
        if spec.cap_drop:
            arguments["cap_drop"] = list(spec.cap_drop)
        if spec.pid_mode:
            arguments["pid_mode"] = spec.pid_mode
        if spec.network_mode:
            arguments["network_mode"] = spec.network_mode
        if spec.ulimits:
            arguments["ulimits"] = [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits]
        binds = [m for m in spec.mounts if m.host_path]
        named = [m for m in spec.mounts if not m.host_path]
        if binds:
            arguments["mounts"] = [
                {"type": "bind", "source": m.source, "target": m.target, "read_only": m.read_only}
                for m in binds
            ]
        if named:
            arguments["volumes"] = {
                m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in named
            }
        with self.failing_as("container create failed"):
            return str(self.client.containers.create(spec.image, **arguments).id)

    def attach(self, container: str) -> OutputStream:
        """Attach to stdout and stderr. Call it before :meth:`start`: then no line is missed.

        The container is initialized first (Podman's runtime errors, a refused ulimit or a
        missing command, fail here as "container failed to start"). With a service on this
        host, the output is then read from conmon's attach socket (see
        :mod:`tinklet_podman.conmon_attach`), which is what makes a chatty action as fast as
        under ``podman run``; when that socket cannot be reached, through the service's attach
        endpoint (said once in the log).
        """
        with self.failing_as("container failed to start"):
            self.client.api.post(
                f"/containers/{container}/init", timeout=SHORT_CALL_TIMEOUT
            ).raise_for_status()
        if self.url.startswith("unix://"):
            try:
                return ConmonAttachment.connect(self._bundle_dir(container))
            except (OSError, EngineFailure) as exc:
                if self._relayed_because is None:
                    self._relayed_because = one_line(exc)
                    log.info(
                        "reading action output through the Podman service: conmon's attach socket "
                        "cannot be reached from here (%s)", self._relayed_because,
                    )  # fmt: skip
        return self._attach_through_service(container)

    def _bundle_dir(self, container: str) -> str:
        """The container's bundle directory, where conmon keeps its attach socket."""
        with self.failing_as("container inspect failed"):
            response = self.client.api.get(f"/containers/{container}/json", timeout=SHORT_CALL_TIMEOUT)
            response.raise_for_status()
            bundle = response.json().get("StaticDir")
        if not bundle:
            raise EngineFailure("the container inspect names no StaticDir")
        return str(bundle)

    def _attach_through_service(self, container: str) -> ResponseFrames:
        """The output relayed by the service's attach endpoint: Podman replies with the HTTP
        header once the attach is in place and streams frames until the container exits; a
        slow reader slows the container down, it loses nothing."""
        params = {"stream": True, "stdout": True, "stderr": True, "logs": False}
        with self.failing_as("container attach failed"):
            response = self.client.api.post(f"/containers/{container}/attach", params=params, stream=True)
            response.raise_for_status()
        return ResponseFrames(response)

    def start(self, container: str) -> None:
        """Start the container; a bad command or a refused limit fails here with Podman's words."""
        with self.failing_as("container failed to start"):
            response = self.client.api.post(f"/containers/{container}/start", timeout=SHORT_CALL_TIMEOUT)
            response.raise_for_status()

    def wait(self, container: str) -> int:
        """Block until the container exits; its exit code."""
        with self.failing_as("waiting for the container failed"):
            response = self.client.api.post(f"/containers/{container}/wait", params={"interval": WAIT_POLL})
            response.raise_for_status()
            return int(response.json())

    def exit_code(self, container: str) -> int | None:
        """The exit code once the container exited, ``None`` while it runs; ContainerGone if unknown."""
        with self.failing_as("container inspect failed", gone=True):
            response = self.client.api.get(f"/containers/{container}/json", timeout=SHORT_CALL_TIMEOUT)
            response.raise_for_status()
            state = response.json().get("State", {})
        return None if state.get("Running") or state.get("Restarting") else int(state.get("ExitCode", -1))

    def oom_killed(self, container: str) -> bool:
        """True when the kernel's out-of-memory killer ended the container (False if unknown)."""
        try:
            with self.failing_as("container inspect failed"):
                response = self.client.api.get(f"/containers/{container}/json", timeout=SHORT_CALL_TIMEOUT)
                response.raise_for_status()
                return bool(response.json().get("State", {}).get("OOMKilled"))
        except EngineFailure:
            return False

    def logs(self, container: str) -> ResponseFrames:
        """The container's complete output so far, streamed (not followed, not buffered)."""
        params = {"stdout": True, "stderr": True, "follow": False}
        with self.failing_as("reading the container log failed"):
            response = self.client.api.get(f"/containers/{container}/logs", params=params, stream=True)
            response.raise_for_status()
        return ResponseFrames(response)

    def kill(self, container: str) -> None:
        """SIGKILL the container; one that already stopped or is gone is fine."""
        with self.failing_as("container kill failed", tolerate=ALREADY_GONE):
            params = {"signal": "SIGKILL"}
            self.client.api.post(
                f"/containers/{container}/kill", params=params, timeout=SHORT_CALL_TIMEOUT
            ).raise_for_status()

    def remove(self, container: str) -> None:
        """Remove the container (force) and its anonymous volumes; one already gone is fine."""
        with self.failing_as("container remove failed", tolerate=ALREADY_GONE):
            params = {"force": True, "v": True}
            self.client.api.delete(
                f"/containers/{container}", params=params, timeout=SHORT_CALL_TIMEOUT
            ).raise_for_status()

    def containers(self, agent_id: str | None = None) -> list[str]:
        """Names of tinklet's action containers (running or not); only ``agent_id``'s if given."""
        labels = label_filter(agent_id)
        with self.failing_as("container list failed"):
            response = self.client.api.get(
                "/containers/json",
                params={"all": True, "filters": json.dumps({"label": labels})},
                timeout=SHORT_CALL_TIMEOUT,
            )
            response.raise_for_status()
            return [str((entry.get("Names") or [entry["Id"]])[0]) for entry in response.json()]

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
