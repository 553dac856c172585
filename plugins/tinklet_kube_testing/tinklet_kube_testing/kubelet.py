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
its containers (SIGTERM, then SIGKILL after the grace period; regular ones first, then sidecars),
removes them, then removes the pod. Every container carries the label :data:`CONTAINER_LABEL`
with the server's id, so tests can find and clean them.

Init containers run as a real kubelet runs them (``initContainerStatuses``): in order, before
the regular container; a plain one must exit 0 first (else the pod fails), a *native sidecar*
(``restartPolicy: Always``) only has to have started. Once the regular container has ended, the
pod's phase and the regular container's status are reported first (the phase is decided by the
regular container), and only then are the sidecars sent SIGTERM, given the pod's grace period
(then SIGKILL), and their ends, with their termination messages, reported: a sidecar's final
status arrives after the pod's end, as it may in a real cluster. A sidecar that exits on its own
is not restarted. Only the regular container's image goes through ``pull_errors``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from tinklet_kube_testing.behaviour import ServerBehaviour
from tinklet_kube_testing.store import ObjectStore, StatusError, name_of, now

JSON = dict[str, Any]
CONTAINER_LABEL = "tinklet.kube-testserver"
BACKOFF_SECONDS = 1.0
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
MAX_TERMINATION_MESSAGE = 4096
SPEC_NAME_LABEL = "tinklet.kube-container"
STOP_JOIN_SECONDS = 30
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


def is_sidecar(container: JSON) -> bool:
    """True for an init container that is a native sidecar (``restartPolicy: Always``)."""
    return container.get("restartPolicy") == "Always"


@dataclass
class PodRun:
    """One pod's containers and the thread that runs them."""

    namespace: str
    name: str
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    container: str | None = None  # the regular container's docker id
    sidecars: dict[str, str] = field(default_factory=dict)  # started sidecars' docker ids by name
    initializing: str | None = None  # the plain init container running now
    thread: threading.Thread | None = None
    ended: bool = False
    scratch: Path | None = None  # the pod's emptyDir volumes and termination message files
    statuses: dict[str, JSON] = field(default_factory=dict)  # by container name

    def termination_file(self, container: str) -> Path | None:
        """The host file mounted at container ``container``'s ``terminationMessagePath``."""
        return self.scratch / f"termination-{container}" if self.scratch is not None else None

    def termination_message(self, container: str) -> str:
        """What the container wrote to its termination message file (up to 4 KiB)."""
        path = self.termination_file(container)
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
        self._deleting: dict[tuple[str, str], threading.Event] = {}  # set once the pod is removed
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

    def _report(self, run: PodRun, spec: JSON, **pod_status: object) -> JSON | None:
        """Write ``pod_status`` and every container status known so far into the pod."""
        inits = [
            run.statuses[c["name"]] for c in spec.get("initContainers") or () if c["name"] in run.statuses
        ]
        regular = [run.statuses[c["name"]] for c in spec["containers"] if c["name"] in run.statuses]
        status: JSON = {**pod_status, "containerStatuses": regular}
        if inits:
            status["initContainerStatuses"] = inits
        return self._set_status(run, status)

    def _note(self, run: PodRun, container: JSON, state: JSON, **extra: object) -> None:
        run.statuses[str(container["name"])] = self._container_status(container, state, **extra)

    def _run(self, run: PodRun, pod: JSON) -> None:
        spec = pod["spec"]
        container = spec["containers"][0]
        inits = list(spec.get("initContainers") or ())
        for init in inits:
            self._note(run, init, {"waiting": {"reason": "PodInitializing"}})
        self._note(
            run, container, {"waiting": {"reason": "PodInitializing" if inits else "ContainerCreating"}}
        )
        self._report(
            run,
            spec,
            phase="Pending",
            startTime=now(),
            hostIP="127.0.0.1",
            conditions=[{"type": "PodScheduled", "status": "True"}],
        )
        run.scratch = Path(tempfile.mkdtemp(prefix="tinklet-kubelet-"))
        for init in inits:
            if not self._run_init(run, spec, init):
                return
        self._note(run, container, {"waiting": {"reason": "ContainerCreating"}})
        for _round in range(self._behaviour.pull_errors):
            if self._pull_error(run, spec, container):
                return
        if self._behaviour.pull_errors or inits:  # pulled at last: the container is being made
            self._report(run, spec)
        started = self._launch(run, spec, container)
        if started is None:
            return
        run.container, container_id, started_at = started
        running_state = {"running": {"startedAt": started_at}}

        def report_running(relist: bool) -> None:
            if relist and not self._still_running(str(run.container)):
                return  # the relist found it exited: the pod goes from Pending to its end
            with run.lock:
                if not run.ended:
                    self._note(run, container, running_state, containerID=container_id)
                    self._report(run, spec, phase="Running")

        sync = self._behaviour.status_sync
        timer = threading.Timer(sync, report_running, args=(True,)) if sync > 0 else None
        if timer is None:
            report_running(False)
        else:
            timer.daemon = True
            timer.start()
        try:
            terminated = self._wait(run.container, started_at, container_id)
        except (docker.errors.APIError, OSError) as exc:  # removed under us: the server is closing
            log.debug("waiting for %s: %s", run.container, exc)
            return
        finally:
            with run.lock:
                run.ended = True
            if timer is not None:
                timer.cancel()
        message = run.termination_message(container["name"])
        if message:
            terminated["message"] = message
        self._note(run, container, {"terminated": terminated}, containerID=container_id)
        final = self._report(run, spec, phase="Succeeded" if terminated["exitCode"] == 0 else "Failed")
        if final is not None:
            self._on_finished(final)
        self._stop_sidecars(run, spec, int(spec.get("terminationGracePeriodSeconds", 30)))

    def _wait(self, container_id: str, started_at: str, status_id: str) -> JSON:
        """Wait for the container's end: its ``terminated`` state (without the message)."""
        code = int(self._streams.wait(container_id).get("StatusCode", -1))
        oom = bool(self._api.inspect_container(container_id)["State"].get("OOMKilled"))
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        return {
            "exitCode": code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": now(),
            "containerID": status_id,
        }

    def _launch(self, run: PodRun, spec: JSON, container: JSON) -> tuple[str, str, str] | None:
        """Create and start ``container`` once its image is there: ``(docker id, containerID,
        startedAt)``, or ``None`` (its waiting status reported) when it cannot start."""
        if not self._image_present(str(container["image"])):
            self._image_missing(run, spec, container)
            return None
        try:
            with run.lock:
                if run.stopping.is_set():
                    return None
                created = self._create(run, spec, container)
                if is_sidecar(container):
                    run.sidecars[str(container["name"])] = created
                elif container is not spec["containers"][0]:
                    run.initializing = created
                if self._behaviour.start_delay > 0:
                    time.sleep(self._behaviour.start_delay)
                self._api.start(created)
                if container is spec["containers"][0]:
                    # known before the lock is let go: a delete waiting for it stops this container
                    run.container = created
        except docker.errors.APIError as exc:
            state = {"waiting": {"reason": "RunContainerError", "message": str(exc.explanation or exc)}}
            self._note(run, container, state)
            self._report(run, spec)
            return None
        return created, f"docker://{created}", now()

    def _run_init(self, run: PodRun, spec: JSON, init: JSON) -> bool:
        """Run one init container: a sidecar until it has started, a plain one to its end;
        ``True`` when the pod goes on."""
        started = self._launch(run, spec, init)
        if started is None:
            return False
        docker_id, container_id, started_at = started
        if is_sidecar(init):
            self._note(run, init, {"running": {"startedAt": started_at}}, containerID=container_id)
            self._report(run, spec)
            return True
        try:
            terminated = self._wait(docker_id, started_at, container_id)
        except (docker.errors.APIError, OSError) as exc:
            log.debug("waiting for %s: %s", docker_id, exc)
            return False
        message = run.termination_message(init["name"])
        if message:
            terminated["message"] = message
        self._note(run, init, {"terminated": terminated}, containerID=container_id)
        with run.lock:
            run.initializing = None
        with contextlib.suppress(docker.errors.APIError):
            self._api.remove_container(docker_id, force=True)
        if terminated["exitCode"] == 0:
            self._report(run, spec)
            return True
        final = self._report(run, spec, phase="Failed")  # restartPolicy Never: the pod has failed
        if final is not None:
            self._on_finished(final)
        return False

    def _stop_sidecars(self, run: PodRun, spec: JSON, grace: int) -> None:
        """After the regular container ended: SIGTERM each sidecar (last started first), SIGKILL
        after ``grace`` seconds, then report its end and termination message."""
        by_name = {str(c["name"]): c for c in spec.get("initContainers") or () if is_sidecar(c)}
        with run.lock:
            started = list(run.sidecars.items())
        for name, docker_id in reversed(started):
            status = run.statuses.get(name, {})
            container_id = str(status.get("containerID") or f"docker://{docker_id}")
            started_at = str(((status.get("state") or {}).get("running") or {}).get("startedAt") or now())
            try:
                self._api.stop(docker_id, timeout=grace)
                terminated = self._wait(docker_id, started_at, container_id)
            except (docker.errors.APIError, OSError) as exc:  # deleted under us
                log.debug("stopping sidecar %s: %s", docker_id, exc)
                continue
            message = run.termination_message(name)
            if message:
                terminated["message"] = message
            self._note(run, by_name[name], {"terminated": terminated}, containerID=container_id)
            self._report(run, spec)

    def _pull_error(self, run: PodRun, spec: JSON, container: JSON) -> bool:
        """One transient pull failure and its back-off; ``True`` when the pod was deleted meanwhile."""
        image = container["image"]
        message = f'failed to pull image "{image}": dial tcp: i/o timeout (a transient test failure)'
        for reason, text in (
            ("ErrImagePull", message),
            ("ImagePullBackOff", f'Back-off pulling image "{image}"'),
        ):
            self._note(run, container, {"waiting": {"reason": reason, "message": text}})
            self._report(run, spec)
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

    def _image_missing(self, run: PodRun, spec: JSON, container: JSON) -> None:
        image = container["image"]
        if container.get("imagePullPolicy") == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            self._note(run, container, {"waiting": {"reason": "ErrImageNeverPull", "message": message}})
            self._report(run, spec)
            return
        message = (
            f'failed to pull and unpack image "{image}": pull access denied, repository does not '
            "exist or may require authorization (the tinklet test API server pulls no images)"
        )
        self._note(run, container, {"waiting": {"reason": "ErrImagePull", "message": message}})
        self._report(run, spec)
        if run.stopping.wait(BACKOFF_SECONDS):
            return
        state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
        self._note(run, container, state)
        self._report(run, spec)

    def _create(self, run: PodRun, spec: JSON, container: JSON) -> str:
        env = container_env(container)
        command = [expand(str(arg), env.get) for arg in container.get("command") or ()]
        args = [expand(str(arg), env.get) for arg in container.get("args") or ()]
        security = container.get("securityContext") or {}
        assert run.scratch is not None
        host_paths = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes") or () if "hostPath" in v}
        for volume in spec.get("volumes") or ():
            if "emptyDir" in volume:
                empty = run.scratch / "volumes" / str(volume["name"])
                if not empty.exists():
                    empty.mkdir(parents=True)
                    empty.chmod(0o777)
                host_paths[volume["name"]] = str(empty)
        binds = [
            f"{host_paths[mount['name']]}:{mount['mountPath']}:{'ro' if mount.get('readOnly') else 'rw'}"
            for mount in container.get("volumeMounts") or ()
            if mount.get("name") in host_paths
        ]
        termination = run.termination_file(str(container["name"]))
        assert termination is not None
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
            read_only=bool(security.get("readOnlyRootFilesystem")),
            security_opt=["no-new-privileges"] if security.get("allowPrivilegeEscalation") is False else None,
        )
        created = self._api.create_container(
            image=container["image"],
            entrypoint=command or None,
            command=args or None,
            environment=[f"{key}={value}" for key, value in env.items()],
            host_config=host_config,
            labels={
                CONTAINER_LABEL: self._server_id,
                "tinklet.kube-pod": f"{run.namespace}/{run.name}",
                SPEC_NAME_LABEL: str(container["name"]),
            },
            name=f"k8s_{container['name']}_{run.name}_{run.namespace}_{self._server_id}",
        )
        return str(created["Id"])

    def delete_pod(self, namespace: str, name: str, grace: int | None = None) -> None:
        """Gracefully delete a pod: mark it, stop and remove its containers, then remove it. A
        second delete of a pod being deleted returns once the first has removed it (a real pod
        stays, marked, until its kubelet has stopped its containers)."""
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
        key = (namespace, name)
        with self._lock:
            run = self._runs.pop(key, None)
            earlier = self._deleting.get(key) if run is None else None
            if run is not None:
                self._deleting[key] = threading.Event()
        if earlier is not None:  # being deleted: it goes once its containers have stopped
            earlier.wait(grace + STOP_JOIN_SECONDS)
            return
        try:
            if run is not None:
                self._stop(run, grace)
            with contextlib.suppress(StatusError):
                self._store.remove("pods", namespace, name)
        finally:
            with self._lock:
                done = self._deleting.pop(key, None) if run is not None else None
            if done is not None:
                done.set()

    def _stop(self, run: PodRun, grace: int) -> None:
        run.stopping.set()
        with run.lock:
            regular = [run.container] if run.container is not None else []
            plain = [run.initializing] if run.initializing is not None else []
            containers = [*plain, *regular, *reversed(run.sidecars.values())]
        for container in containers:
            try:
                self._api.stop(container, timeout=grace)
            except docker.errors.APIError as exc:
                log.debug("stopping %s: %s", container, exc)
        if run.thread is not None:
            run.thread.join(grace + STOP_JOIN_SECONDS)
        for container in containers:
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
