"""The test API server's kubelet: runs each pod's container for real on the local dockerd.

A pod goes ``Pending`` (``ContainerCreating``) -> ``Running`` -> ``Succeeded``/``Failed`` with
``containerStatuses[].state.terminated.exitCode`` and ``reason`` (``Completed``, ``Error``,
``OOMKilled``). Nothing is pulled (there is no registry here): an image missing from dockerd
shows ``ErrImagePull`` and then ``ImagePullBackOff`` (``ErrImageNeverPull`` with
``imagePullPolicy: Never``) and stays so until the pod is deleted. The pod spec fields tinklet
uses are honoured: ``command``/``args`` (Docker's entrypoint/cmd) and ``env`` with the kubelet's
``$(VAR)`` expansion, ``securityContext.privileged`` and added capabilities, ``hostPID``,
``hostNetwork``, ``hostPath`` and ``emptyDir`` volume mounts (an ``emptyDir`` is a host temp
directory that lives as long as the pod), and the termination message: as a real kubelet, it
bind-mounts an empty host file at the container's ``terminationMessagePath`` (default
``/dev/termination-log``) and copies up to 4 KiB of it into
``containerStatuses[].state.terminated.message`` when the container ends. Deleting a pod stops
its container (SIGTERM, then SIGKILL after the grace period), removes it, then removes the pod.
Every container carries the label :data:`CONTAINER_LABEL` with the server's id, so tests can find
and clean them.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from tinklet_kube.testing.behaviour import ServerBehaviour
from tinklet_kube.testing.store import ObjectStore, StatusError, name_of, now

JSON = dict[str, Any]
CONTAINER_LABEL = "tinklet.kube-testserver"
BACKOFF_SECONDS = 1.0
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
MAX_TERMINATION_MESSAGE = 4096
log = logging.getLogger("tinklet.kube.testserver")


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """The kubelet's ``$(VAR)`` expansion: ``$$`` is a literal ``$``; unknown references stay."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        following = text[index + 1] if index + 1 < len(text) else ""
        if char == "$" and following == "$":
            out.append("$")
            index += 2
        elif char == "$" and following == "(":
            end = text.find(")", index + 2)
            if end < 0:
                out.append(text[index:])
                break
            value = lookup(text[index + 2 : end])
            out.append(value if value is not None else text[index : end + 1])
            index = end + 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def container_env(container: JSON) -> dict[str, str]:
    """The container's env, each value expanded against the ones defined before it."""
    env: dict[str, str] = {}
    for item in container.get("env") or ():
        env[str(item["name"])] = expand(str(item.get("value") or ""), env.get)
    return env


class _LogReader:
    """A container's log, followed to its real end.

    dockerd 20.10 ends a followed log when the container exits even if it has not sent the whole
    file yet (a fast writer lost about 40% of 100,000 lines in one run of 15): after the follow
    ends, the rest is read from the stored log, skipping the bytes already sent, as a kubelet
    reads the log file to its end.
    """

    def __init__(self, api: docker.APIClient, container: str) -> None:
        self._api = api
        self._container = container
        self._lock = threading.Lock()
        self._closed = False
        self._current: Any = None

    def _open(self, follow: bool, tail: int | None = None) -> Any:
        with self._lock:
            if self._closed:
                return iter(())
            self._current = self._api.logs(
                self._container, stdout=True, stderr=True, stream=True, follow=follow, tail=tail or "all"
            )
            return self._current

    def last_lines(self, count: int) -> Iterator[bytes]:
        """The log's last ``count`` lines (``tailLines``)."""
        yield from self._open(False, count)

    def chunks(self, follow: bool) -> Iterator[bytes]:
        """The log's bytes as they come."""
        sent = 0
        for chunk in self._open(follow):
            sent += len(chunk)
            yield chunk
        if not follow:
            return
        try:
            stored = self._open(False)
            for chunk in stored:
                if sent >= len(chunk):
                    sent -= len(chunk)
                    continue
                yield chunk[sent:]
                sent = 0
        except docker.errors.APIError:  # the container is gone: nothing more to read
            return

    def close(self) -> None:
        """Stop reading (from any thread)."""
        with self._lock:
            self._closed = True
            current = self._current
        if current is not None:
            current.close()


@dataclass
class PodRun:
    """One pod's container and the thread that runs it."""

    namespace: str
    name: str
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    container: str | None = None
    thread: threading.Thread | None = None
    ended: bool = False
    scratch: Path | None = None  # the pod's emptyDir volumes and termination message file

    def termination_file(self) -> Path | None:
        """The host file mounted at the container's ``terminationMessagePath``."""
        return self.scratch / "termination-log" if self.scratch is not None else None

    def termination_message(self) -> str:
        """What the container wrote to its termination message file (up to 4 KiB)."""
        path = self.termination_file()
        if path is None:
            return ""
        try:
            with open(path, "rb") as file:
                return file.read(MAX_TERMINATION_MESSAGE).decode("utf-8", errors="replace")
        except OSError:
            return ""

    def remove_scratch(self) -> None:
        """Remove the pod's emptyDir volumes and termination message file."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


class DockerKubelet:
    """Runs pods on dockerd and reports their status into the store."""

    def __init__(
        self,
        store: ObjectStore,
        server_id: str,
        on_finished: Callable[[JSON], None],
        docker_url: str = "unix:///var/run/docker.sock",
        behaviour: ServerBehaviour | None = None,
    ) -> None:
        self._store = store
        self._behaviour = behaviour or ServerBehaviour()
        self._server_id = server_id
        self._on_finished = on_finished
        self._api = docker.APIClient(base_url=docker_url, version="auto", timeout=60)
        # waits and followed logs block for as long as a container runs: no client timeout
        self._streams = docker.APIClient(base_url=docker_url, version="auto", timeout=None)
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], PodRun] = {}
        self._started: list[str] = []

    @property
    def started_pods(self) -> list[str]:
        """The names of every pod this kubelet was given, in order."""
        with self._lock:
            return list(self._started)

    def start_pod(self, pod: JSON) -> None:
        """Run ``pod`` in the background."""
        run = PodRun(pod["metadata"]["namespace"], name_of(pod))
        run.thread = threading.Thread(
            target=self._run, args=(run, pod), name=f"kubelet-{run.name}", daemon=True
        )
        with self._lock:
            self._runs[(run.namespace, run.name)] = run
            self._started.append(run.name)
        run.thread.start()

    def _set_status(self, run: PodRun, status: JSON) -> JSON | None:
        def mutate(pod: JSON) -> None:
            pod["status"] = {**pod.get("status", {}), **status}

        try:
            return self._store.update("pods", run.namespace, run.name, mutate)
        except StatusError:
            return None

    def _container_status(self, spec: JSON, state: JSON, **extra: object) -> JSON:
        return {
            "name": spec["name"],
            "image": spec["image"],
            "imageID": "",
            "restartCount": 0,
            "state": state,
            "ready": "running" in state,
            "started": "running" in state,
            **extra,
        }

    def _run(self, run: PodRun, pod: JSON) -> None:
        spec = pod["spec"]
        container = spec["containers"][0]
        waiting = {"waiting": {"reason": "ContainerCreating"}}
        self._set_status(
            run,
            {
                "phase": "Pending",
                "startTime": now(),
                "hostIP": "127.0.0.1",
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [self._container_status(container, waiting)],
            },
        )
        image = str(container["image"])
        for _round in range(self._behaviour.pull_errors):
            if self._pull_error(run, container):
                return
        if self._behaviour.pull_errors:  # pulled at last: the container is being made
            self._set_status(run, {"containerStatuses": [self._container_status(container, waiting)]})
        if not self._image_present(image):
            self._image_missing(run, container)
            return
        try:
            with run.lock:
                if run.stopping.is_set():
                    return
                run.container = self._create(run, spec, container)
                self._api.start(run.container)
        except docker.errors.APIError as exc:
            state = {"waiting": {"reason": "RunContainerError", "message": str(exc.explanation or exc)}}
            self._set_status(run, {"containerStatuses": [self._container_status(container, state)]})
            return
        container_id = f"docker://{run.container}"
        started = now()
        running = {
            "phase": "Running",
            "containerStatuses": [
                self._container_status(
                    container, {"running": {"startedAt": started}}, containerID=container_id
                )
            ],
        }

        def report_running(relist: bool) -> None:
            if relist and not self._still_running(str(run.container)):
                return  # the relist found it exited: the pod goes from Pending to its end
            with run.lock:
                if not run.ended:
                    self._set_status(run, running)

        sync = self._behaviour.status_sync
        timer = threading.Timer(sync, report_running, args=(True,)) if sync > 0 else None
        if timer is None:
            report_running(False)
        else:
            timer.daemon = True
            timer.start()
        try:
            code = int(self._streams.wait(run.container).get("StatusCode", -1))
            oom = bool(self._api.inspect_container(run.container)["State"].get("OOMKilled"))
        except (docker.errors.APIError, OSError) as exc:  # removed under us: the server is closing
            log.debug("waiting for %s: %s", run.container, exc)
            return
        finally:
            with run.lock:
                run.ended = True
            if timer is not None:
                timer.cancel()
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        terminated = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": now(),
            "containerID": container_id,
        }
        message = run.termination_message()
        if message:
            terminated["message"] = message
        final = self._set_status(
            run,
            {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [
                    self._container_status(container, {"terminated": terminated}, containerID=container_id)
                ],
            },
        )
        if final is not None:
            self._on_finished(final)

    def _pull_error(self, run: PodRun, container: JSON) -> bool:
        """One transient pull failure and its back-off; ``True`` when the pod was deleted meanwhile."""
        image = container["image"]
        message = f'failed to pull image "{image}": dial tcp: i/o timeout (a transient test failure)'
        for reason, text in (
            ("ErrImagePull", message),
            ("ImagePullBackOff", f'Back-off pulling image "{image}"'),
        ):
            state = {"waiting": {"reason": reason, "message": text}}
            self._set_status(run, {"containerStatuses": [self._container_status(container, state)]})
            if run.stopping.wait(BACKOFF_SECONDS):
                return True
        return False

    def _still_running(self, container: str) -> bool:
        try:
            return bool(self._api.inspect_container(container)["State"].get("Running"))
        except docker.errors.APIError:
            return False

    def _image_present(self, image: str) -> bool:
        try:
            self._api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return False
        return True

    def _image_missing(self, run: PodRun, container: JSON) -> None:
        image = container["image"]
        if container.get("imagePullPolicy") == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            state = {"waiting": {"reason": "ErrImageNeverPull", "message": message}}
            self._set_status(run, {"containerStatuses": [self._container_status(container, state)]})
            return
        message = (
            f'failed to pull and unpack image "{image}": pull access denied, repository does not '
            "exist or may require authorization (the tinklet test API server pulls no images)"
        )
        state = {"waiting": {"reason": "ErrImagePull", "message": message}}
        self._set_status(run, {"containerStatuses": [self._container_status(container, state)]})
        if run.stopping.wait(BACKOFF_SECONDS):
            return
        state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
        self._set_status(run, {"containerStatuses": [self._container_status(container, state)]})

    def _create(self, run: PodRun, spec: JSON, container: JSON) -> str:
        env = container_env(container)
        command = [expand(str(arg), env.get) for arg in container.get("command") or ()]
        args = [expand(str(arg), env.get) for arg in container.get("args") or ()]
        security = container.get("securityContext") or {}
        run.scratch = Path(tempfile.mkdtemp(prefix="tinklet-kubelet-"))
        host_paths = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes") or () if "hostPath" in v}
        for volume in spec.get("volumes") or ():
            if "emptyDir" in volume:
                empty = run.scratch / "volumes" / str(volume["name"])
                empty.mkdir(parents=True)
                empty.chmod(0o777)
                host_paths[volume["name"]] = str(empty)
        binds = [
            f"{host_paths[mount['name']]}:{mount['mountPath']}:{'ro' if mount.get('readOnly') else 'rw'}"
            for mount in container.get("volumeMounts") or ()
            if mount.get("name") in host_paths
        ]
        termination = run.scratch / "termination-log"
        termination.touch()
        termination.chmod(0o666)
        target = container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
        binds.append(f"{termination}:{target}:rw")
        host_config = self._api.create_host_config(
            binds=binds or None,
            privileged=bool(security.get("privileged")),
            cap_add=(security.get("capabilities") or {}).get("add") or None,
            pid_mode="host" if spec.get("hostPID") else None,
            network_mode="host" if spec.get("hostNetwork") else None,
        )
        created = self._api.create_container(
            image=container["image"],
            entrypoint=command or None,
            command=args or None,
            environment=[f"{key}={value}" for key, value in env.items()],
            host_config=host_config,
            labels={CONTAINER_LABEL: self._server_id, "tinklet.kube-pod": f"{run.namespace}/{run.name}"},
            name=f"k8s_{container['name']}_{run.name}_{run.namespace}_{self._server_id}",
        )
        return str(created["Id"])

    def delete_pod(self, namespace: str, name: str, grace: int | None = None) -> None:
        """Gracefully delete a pod: mark it, stop and remove its container, then remove it."""
        try:
            pod = self._store.get("pods", namespace, name)
        except StatusError:
            return
        if grace is None:
            grace = int(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))

        def mark(obj: JSON) -> None:
            obj["metadata"].setdefault("deletionTimestamp", now())
            obj["metadata"]["deletionGracePeriodSeconds"] = grace

        try:
            self._store.update("pods", namespace, name, mark)
        except StatusError:
            return
        with self._lock:
            run = self._runs.pop((namespace, name), None)
        if run is not None:
            self._stop(run, grace)
        with contextlib.suppress(StatusError):
            self._store.remove("pods", namespace, name)

    def _stop(self, run: PodRun, grace: int) -> None:
        run.stopping.set()
        with run.lock:
            container = run.container
        if container is not None:
            try:
                self._api.stop(container, timeout=grace)
            except docker.errors.APIError as exc:
                log.debug("stopping %s: %s", container, exc)
        if run.thread is not None:
            run.thread.join(grace + 30)
        if container is not None:
            try:
                self._api.remove_container(container, force=True)
            except docker.errors.APIError as exc:
                log.debug("removing %s: %s", container, exc)
        run.remove_scratch()

    def logs(
        self, namespace: str, name: str, follow: bool, tail: int | None = None
    ) -> tuple[Iterator[bytes], Callable[[], None]]:
        """The container's output (stdout and stderr; its last ``tail`` lines only, if given) and a
        function that stops the stream."""
        with self._lock:
            run = self._runs.get((namespace, name))
        container = run.container if run is not None else None
        if container is None:
            pod = self._store.get("pods", namespace, name)
            statuses = pod.get("status", {}).get("containerStatuses") or [{}]
            reason = ((statuses[0].get("state") or {}).get("waiting") or {}).get(
                "reason", "ContainerCreating"
            )
            raise StatusError(
                400, "BadRequest", f'container "action" in pod "{name}" is waiting to start: {reason}'
            )
        reader = _LogReader(self._streams, container)
        if tail is not None and not follow:
            return reader.last_lines(tail), reader.close
        return reader.chunks(follow), reader.close

    def close(self) -> None:
        """Stop and remove every container this kubelet made."""
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        for run in runs:
            run.stopping.set()
        for container in self._api.containers(
            all=True, filters={"label": f"{CONTAINER_LABEL}={self._server_id}"}
        ):
            try:
                self._api.remove_container(container["Id"], force=True)
            except docker.errors.APIError as exc:
                log.debug("removing %s: %s", container["Id"], exc)
        for run in runs:
            run.remove_scratch()
        self._api.close()
        self._streams.close()
