"""Following one Job to its end: two watches, one log stream, one decision.

Helper threads watch the Job (by name) and its pods (by ``controller-uid``), stream the pod's log
into a :class:`~tinklet_core.runtime.LineSplitter` as soon as its container has started, and
decide the :class:`~tinklet_core.model.Outcome` with :class:`~tinklet_kube.outcome.JobView`.
``finished`` is set once the outcome is known and the log has been read to its end, so the
calling thread can wait for it with :func:`tinklet_core.runtime.wait_for_exit`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from tinklet_core.model import Outcome, State
from tinklet_core.runtime import LineSplitter
from tinklet_kube.errors import KubeApiError
from tinklet_kube.manifests import CONTAINER_NAME
from tinklet_kube.outcome import JobView
from tinklet_kube.watch import ByteStream, ObjectWatch, WatchEvent, WatchSource

# After the outcome is known, how long the rest of the log may take to arrive.
LOG_DRAIN_SECONDS = 10.0
STOP_JOIN_SECONDS = 5.0
_Item = tuple[str, WatchEvent | Exception | None]


class FollowApi(WatchSource, Protocol):
    """What :class:`JobFollower` needs from the API (see :class:`tinklet_kube.api.KubeApi`)."""

    def pod_log(self, name: str, container: str) -> ByteStream:
        """The container's output, followed until it exits."""
        ...


class JobFollower:
    """Watches one Job and its pod in helper threads; read :attr:`outcome` once :attr:`finished`."""

    def __init__(
        self,
        api: FollowApi,
        job_name: str,
        job_uid: str,
        output: Callable[[str], None],
        log: logging.Logger,
    ) -> None:
        self.finished = threading.Event()
        self.outcome: Outcome | None = None
        self._api = api
        self._output = output
        self._log = log
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._watches = {
            "job": ObjectWatch(api, "jobs", field_selector=f"metadata.name={job_name}"),
            "pod": ObjectWatch(api, "pods", label_selector=f"controller-uid={job_uid}"),
        }
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._log_thread: threading.Thread | None = None
        self._log_stream: ByteStream | None = None

    def start(self) -> None:
        """Start the decision thread and the watches."""
        self._spawn(self._decide)
        for source, watch in self._watches.items():
            self._spawn(self._pump, source, watch)

    def stop(self) -> None:
        """Close every stream and wait (briefly) for the helper threads. Safe to call twice."""
        self._stopped.set()
        for watch in self._watches.values():
            watch.close()
        self._interrupt_log()
        self._queue.put(("stop", None))
        with self._lock:
            threads = list(self._threads)
        for thread in threads:  # the decision thread first: it is the one that starts the log's
            thread.join(STOP_JOIN_SECONDS)
            self._interrupt_log()
        with self._lock:
            late = [thread for thread in self._threads if thread not in threads]
        for thread in late:
            thread.join(STOP_JOIN_SECONDS)

    def _interrupt_log(self) -> None:
        with self._lock:
            stream = self._log_stream
        if stream is not None:
            stream.interrupt()

    def _spawn(self, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(
            target=target, args=args, name=f"tinklet-kube-{target.__name__}", daemon=True
        )
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return thread

    def _pump(self, source: str, watch: ObjectWatch) -> None:
        try:
            for event in watch:
                self._queue.put((source, event))
        except Exception as exc:  # reported to the decision thread, which fails the action
            self._queue.put((source, exc))

    def _decide(self) -> None:
        view = JobView()
        outcome: Outcome | None = None
        try:
            while outcome is None and not self._stopped.is_set():
                source, item = self._queue.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    outcome = Outcome(State.FAILED, reason=f"lost track of the Job: {item}")
                    break
                if source == "job":
                    view.apply_job(item)
                else:
                    view.apply_pod(item)
                pod = view.pod_to_follow()
                if pod is not None and self._log_thread is None and not self._stopped.is_set():
                    self._log_thread = self._spawn(self._stream_log, pod)
                outcome = view.outcome()
            self.outcome = outcome
            if outcome is not None and self._log_thread is not None:
                self._log_thread.join(LOG_DRAIN_SECONDS)
        finally:
            for watch in self._watches.values():
                watch.close()
            self.finished.set()

    def _stream_log(self, pod: str) -> None:
        try:
            stream = self._api.pod_log(pod, CONTAINER_NAME)
        except KubeApiError as exc:
            self._log.warning("cannot read the log of pod %s: %s", pod, exc)
            return
        with self._lock:
            if self._stopped.is_set():
                stream.close()
                return
            self._log_stream = stream
        splitter = LineSplitter(self._output)
        try:
            while chunk := stream.read():
                splitter.feed(chunk)
        except KubeApiError as exc:
            self._log.warning("the log of pod %s broke off: %s", pod, exc)
        finally:
            splitter.close()
            stream.close()
