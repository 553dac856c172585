"""The Docker engine adapter: the shared container layer's engine calls, made with docker-py.

This is the only module that imports docker-py; :mod:`tinklet_docker.runtime` imports it when a
runtime is opened, never when plugins are merely listed. Every failure is one
:class:`~tinklet_core.containers.engine.EngineFailure` line.

Two low-level API clients share one daemon URL: ``api`` keeps docker-py's 60 s read timeout for
short calls, and ``stream_api`` has no timeout for the calls that legitimately block for as long
as an action runs (attaching to its output, waiting for its exit): with a read timeout, a
container that prints nothing for a minute would break its own output stream.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Any

import docker
from docker.errors import APIError, DockerException
from requests.exceptions import RequestException

from tinklet_core.containers.engine import (
    ALREADY_GONE,
    EngineFailure,
    PullEvents,
    PullFailure,
    failing_as,
    label_filter,
    pull_error,
)
from tinklet_core.containers.frames import ResponseFrames
from tinklet_core.containers.spec import ContainerSpec
from tinklet_core.engine_wait import unreachable
from tinklet_core.model import RegistryCredentials
from tinklet_core.redaction import described_value, without_value
from tinklet_core.runtime_helpers import innermost_reason, one_line, without_secret

DEFAULT_URL = "unix:///var/run/docker.sock"

log = logging.getLogger("tinklet.docker")


class _EmptyDockerConfig(dict[str, Any]):
    """A docker config with nothing in it that docker-py still takes as given: it reads the file
    again when handed an empty (falsy) one."""

    def __bool__(self) -> bool:
        return True


class _ClientWithoutDockerConfig(docker.APIClient):  # type: ignore[misc]
    """docker-py's client built as if ``~/.docker/config.json`` were empty: what it reads from
    the file is set aside, so a broken file cannot stop it (tinklet passes its own logins to
    every pull)."""

    @property
    def _general_configs(self) -> dict[str, Any]:
        return _EmptyDockerConfig()

    @_general_configs.setter
    def _general_configs(self, _read_from_file: Any) -> None:
        """docker-py's own reading of the file is dropped."""


__all__ = ["DEFAULT_URL", "DockerEngine", "pull_error", "tinklet_containers"]


def tinklet_containers(api: Any, agent_id: str | None = None) -> list[str]:
    """Names of the containers (running or not) that carry tinklet's action label.

    ``api`` is a ``docker.APIClient``; with ``agent_id``, only that agent's containers.
    """
    found = api.containers(all=True, filters={"label": label_filter(agent_id)})
    return [entry["Names"][0].lstrip("/") if entry.get("Names") else entry["Id"] for entry in found]


class DockerEngine:
    """One Docker daemon, reached at ``url``; constructing it checks that the daemon answers
    (:class:`~tinklet_core.errors.EngineNotReady` when it may yet, see
    :func:`~tinklet_core.engine_wait.unreachable`)."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.shown_url = described_value("docker_host", url, path=True)  # a URL may hold a login
        self._clients: list[Any] = []
        try:
            self.api = self._client(version="auto")
            self.api.ping()
            self.stream_api = self._client(version=self.api.api_version, timeout=None)
        except (DockerException, RequestException) as exc:
            self.close()
            reason = without_value(innermost_reason(exc), "docker_host", url)
            message = f"docker daemon at {self.shown_url} is not reachable: {reason}"
            raise unreachable(message, url, exc) from exc

    def _client(self, **kwargs: Any) -> Any:
        """A low-level client that never reads ``~/.docker/config.json``.

        docker-py reads that file itself when it builds a client, and trusts its shape: ``[]``,
        ``{"auths": "x"}``, a numeric ``auth``, ``{"proxies": []}`` or ``{"HttpHeaders": "x"}``
        raise from inside docker-py (at build, or at every request). tinklet uses none of it:
        each pull passes its login explicitly (the core's registry hook reads the file, and warns
        about a broken one the same way for every runtime), containers get tinklet's proxy
        (``use_config_proxy=False``), and docker's detach keys and extra headers are the docker
        CLI's business. So the client is built with an empty config in place of the file
        (:class:`_ClientWithoutDockerConfig`).
        """
        client = _ClientWithoutDockerConfig(base_url=self.url, **kwargs)
        self._clients.append(client)
        return client

    def failing_as(
        self, what: str, secret: str | None = None, tolerate: tuple[int, ...] = (), gone: bool = False
    ) -> AbstractContextManager[None]:
        """docker-py's exceptions inside the block become ``EngineFailure("WHAT: reason")``
        (see :func:`tinklet_core.containers.engine.failing_as`)."""
        return failing_as(
            what, secret, api_errors=(APIError,), connection_errors=(DockerException, RequestException),
            service=f"docker daemon at {self.shown_url}", tolerate=tolerate, gone=gone,
        )  # fmt: skip

    def ping(self) -> None:
        """Return when the daemon answers (:class:`EngineUnreachable` when it does not)."""
        with self.failing_as("ping failed"):
            self.api.ping()

    def image_present(self, image: str) -> bool:
        """True when the daemon has ``image`` (by name, tag or digest)."""
        with self.failing_as(f"image inspect failed for {image}"):
            try:
                self.api.inspect_image(image)
            except docker.errors.ImageNotFound:
                return False
        return True

    def image_user(self, image: str) -> str:
        """The ``Config.User`` of ``image`` (``""``: root)."""
        with self.failing_as(f"image inspect failed for {image}"):
            config = self.api.inspect_image(image).get("Config") or {}
        return str(config.get("User") or "")

    def pull(
        self, image: str, credentials: RegistryCredentials | None, on_event: PullEvents | None = None
    ) -> None:
        """Pull ``image``, handing each stream event to ``on_event``; :class:`PullFailure` with
        the registry's words (no password) when it fails.

        The low-level stream is read to its end because docker reports most pull failures as
        an ``{"error": …}`` line in a successful HTTP response. Without ``credentials`` the pull
        is anonymous: docker-py's own fallback to ``~/.docker/config.json`` is not used, the
        core's registry-credentials hook already covers that file.
        """
        auth = {"username": credentials.username, "password": credentials.password} if credentials else {}
        secret = credentials.password if credentials else None
        error = None
        with self.failing_as("image pull failed", secret):  # an unreachable daemon is no pull failure
            try:
                for event in self.api.pull(image, stream=True, decode=True, auth_config=auth):
                    error = pull_error(event)
                    if error:
                        break
                    if on_event is not None and isinstance(event, dict):
                        on_event(event)
            except APIError as exc:
                error = str(exc.explanation or exc)
        if error:
            raise PullFailure(without_secret(one_line(error), secret))

    def create(self, spec: ContainerSpec) -> str:
        """Create the container; returns its id."""
        with self.failing_as("container create failed"):
            host_config = self.api.create_host_config(
                binds=[mount.bind for mount in spec.mounts] or None,
                privileged=spec.privileged,
                cap_add=list(spec.cap_add) or None,
                cap_drop=list(spec.cap_drop) or None,
                pid_mode=spec.pid_mode or None,
                network_mode=spec.network_mode or None,
                ulimits=[docker.types.Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in spec.ulimits]
                or None,
            )
            created = self.api.create_container(
                spec.image,
                command=list(spec.command) or None,
                name=spec.name,
                environment=spec.env_list,
                labels=dict(spec.labels),
                host_config=host_config,
                use_config_proxy=False,
            )
        return str(created["Id"])

    def attach(self, container: str) -> ResponseFrames:
        """Attach to stdout and stderr. Call before :meth:`start` so no output is missed.

        A plain request, not docker-py's ``attach``: that one inspects the container first to
        learn whether it has a TTY (tinklet never asks for one) and reads the socket frame by
        frame. Without an ``Upgrade`` header dockerd answers 200 and sends the multiplexed
        stream as the response body until the container exits, which
        :class:`~tinklet_core.containers.frames.ResponseFrames` reads in large chunks.
        """
        params = {"stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
        return self._frames("container attach failed", "POST", "attach", container, params)

    def _frames(
        self, what: str, method: str, endpoint: str, container: str, params: dict[str, int]
    ) -> ResponseFrames:
        """The multiplexed output a ``/containers/ID/ENDPOINT`` request streams back, read by
        the client without a read timeout (it may legitimately be silent for a long time)."""
        url = self.api._url("/containers/{0}/" + endpoint, container)
        with self.failing_as(what):
            response = self.stream_api.request(method, url, params=params, stream=True, timeout=None)
            self.api._raise_for_status(response)
        return ResponseFrames(response)

    def start(self, container: str) -> None:
        """Start the container; a bad command fails here with docker's explanation."""
        with self.failing_as("container failed to start"):
            self.api.start(container)

    def wait(self, container: str) -> int:
        """Block until the container exits; returns its exit code."""
        with self.failing_as("waiting for the container failed"):
            status = self.stream_api.wait(container)
        return int(status.get("StatusCode", -1))

    def exit_code(self, container: str) -> int | None:
        """The exit code once the container exited, ``None`` while it runs; ContainerGone if unknown."""
        with self.failing_as("container inspect failed", gone=True):
            state = self.api.inspect_container(container)["State"]
        return None if state.get("Running") or state.get("Restarting") else int(state.get("ExitCode", -1))

    def logs(self, container: str) -> ResponseFrames:
        """The container's complete stored output so far, as frames (not followed, not buffered)."""
        params = {"stdout": 1, "stderr": 1, "follow": 0, "timestamps": 0}
        return self._frames("reading the container log failed", "GET", "logs", container, params)

    def oom_killed(self, container: str) -> bool:
        """True when the kernel's out-of-memory killer ended the container (False if unknown)."""
        try:
            with self.failing_as("container inspect failed"):
                return bool(self.api.inspect_container(container)["State"].get("OOMKilled"))
        except EngineFailure:
            return False

    def kill(self, container: str) -> None:
        """SIGKILL the container; one that already stopped or is gone is fine."""
        with self.failing_as("container kill failed", tolerate=ALREADY_GONE):
            self.api.kill(container)

    def remove(self, container: str) -> None:
        """Remove the container (force) and its anonymous volumes; one already gone is fine."""
        with self.failing_as("container remove failed", tolerate=ALREADY_GONE):
            self.api.remove_container(container, v=True, force=True)

    def containers(self, agent_id: str | None = None) -> list[str]:
        """Names of tinklet's action containers on this daemon (only ``agent_id``'s if given)."""
        with self.failing_as("container list failed"):
            return tinklet_containers(self.api, agent_id)

    def close(self) -> None:
        """Close both clients' connections."""
        for client in self._clients:
            client.close()
        self._clients.clear()
