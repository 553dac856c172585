"""Following one Job to its end: two watches, one log reader, one decision.

Helper threads watch the Job (by name) and its pods (by the Job's own selector, which names the
current ``batch.kubernetes.io/controller-uid`` label, or the legacy ``controller-uid`` on older
clusters), read the pod's log into a :class:`~tinklet_core.runtime.LineSplitter` from the moment
its container starts, and decide the :class:`~tinklet_core.model.Outcome` with
:class:`~tinklet_kube.outcome.JobView`. ``finished`` is set once the outcome is known and the log
has been read to its end, so the calling thread can wait for it with
:func:`tinklet_core.runtime.wait_for_exit`.

The log is read as a byte sequence from its start: a followed stream that ends while the
container still runs (a proxy's idle timeout) is opened again and the bytes already delivered are
skipped, so no line is lost or doubled. Once the container has ended, the log's last lines
(``tailLines``) are compared with the end of what was delivered: when they match, the log was
read whole; when not, one last read without ``follow`` fetches what the streams did not deliver.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from tinklet_core.model import Outcome, State
from tinklet_core.runtime import LineSplitter
from tinklet_core.runtime_helpers import one_line
from tinklet_kube.errors import KubeApiError
from tinklet_kube.manifests import CONTAINER_NAME
from tinklet_kube.outcome import JobView, Limits
from tinklet_kube.retry import ApiRetry
from tinklet_kube.watch import JSON, ByteStream, ObjectWatch, WatchEvent, WatchSource

# After the outcome is known, how long reading the rest of the log may take.
LOG_DRAIN_SECONDS = 60.0
# A log read the API refuses (not one that breaks, nor an API that is away) is tried again this
# many times.
LOG_RETRIES = 5
# After a followed log ends, how long to wait for the pods' watch to say the container ended
# before opening a followed stream again.
LOG_REOPEN_WAIT = 1.0
STOP_JOIN_SECONDS = 5.0
# The end-of-log check: how many last lines are compared, and how many delivered bytes are kept
# to compare them with (a longer tail means a full last read instead).
TAIL_CHECK_LINES = 20
TAIL_KEEP_BYTES = 256 * 1024
# How often the decision is looked at again when nothing happens (the limits need a clock).
TICK_SECONDS = 0.5
# A Job still without a pod this long after it was made has its Events read (why: FailedCreate
# from admission, quota, a missing service account), then again every EVENTS_EVERY seconds.
EVENTS_AFTER = 2.0
EVENTS_EVERY = 5.0
_Item = tuple[str, WatchEvent | Exception | None]


class FollowApi(WatchSource, Protocol):
    """What :class:`JobFollower` needs from the API (see :class:`tinklet_kube.api.KubeApi`)."""

    def pod_log(
        self, name: str, container: str, *, follow: bool, tail_lines: int | None = None
    ) -> ByteStream:
        """The container's output from its start, or its last ``tail_lines`` (followed until it
        exits, with ``follow``)."""
        ...


def printable(text: object) -> str:
    """``text`` from the server made safe for one log line: whitespace runs collapsed, other
    control characters escaped (``\\x1b``), so a message cannot forge or garble log lines."""
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in one_line(text))


def pod_selector(job: JSON) -> str:
    """The label selector of the Job's pods: its own ``spec.selector.matchLabels`` (the current
    ``batch.kubernetes.io/controller-uid``), else the legacy ``controller-uid`` label."""
    labels = (job.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    if labels:
        return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return f"controller-uid={job.get('metadata', {}).get('uid') or ''}"


class JobFollower:
    """Watches one Job and its pod in helper threads; read :attr:`outcome` once :attr:`finished`."""

    def __init__(
        self,
        api: FollowApi,
        job: JSON,
        output: Callable[[str], None],
        log: logging.Logger,
        limits: Limits | None = None,
    ) -> None:
        self.finished = threading.Event()
        self.outcome: Outcome | None = None
        # set once the action's termination message and the helper's reason are final (or
        # following ended): see files()
        self.files_settled = threading.Event()
        self._files = ("", "")
        self._api = api
        self._output = output
        self._log = log
        self._limits = limits or Limits()
        self._queue: queue.Queue[_Item] = queue.Queue()
        name = str(job.get("metadata", {}).get("name") or "")
        self._pod_selector = pod_selector(job)
        self._watches = {
            "job": ObjectWatch(api, "jobs", field_selector=f"metadata.name={name}"),
            "pod": ObjectWatch(api, "pods", label_selector=self._pod_selector),
        }
        self._container_done = threading.Event()
        self._delivered = 0  # bytes of the log passed on so far (the log thread's own)
        self._recent = bytearray()  # the last TAIL_KEEP_BYTES of them
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
        view = JobView(started=time.monotonic(), limits=self._limits)
        outcome: Outcome | None = None
        listed = False
        told: str | None = None
        events_at = view.started + EVENTS_AFTER
        try:
            while outcome is None and not self._stopped.is_set():
                try:
                    source, item = self._queue.get(timeout=TICK_SECONDS)
                except queue.Empty:
                    source, item = "tick", None
                if source == "stop":
                    break
                if isinstance(item, Exception):
                    outcome = Outcome(State.FAILED, reason=f"lost track of the Job: {item}")
                    break
                if isinstance(item, WatchEvent):
                    if source == "job":
                        view.apply_job(item)
                    else:
                        view.apply_pod(item, time.monotonic())
                if view.needs_pod_list() and not listed:
                    listed = True
                    self._list_pods(view)
                if view.current_pod() is None and view.job is not None and time.monotonic() >= events_at:
                    events_at = time.monotonic() + EVENTS_EVERY
                    view.no_pod_reason = self._job_warning(view.job)
                trouble = view.trouble(time.monotonic())
                if trouble is not None and trouble != told:
                    self._log.warning("%s", printable(trouble))
                told = trouble
                self._follow_log(view)
                self._files = (view.termination_message(), view.helper_reason())
                if view.current_pod() is not None and view.files_settled():
                    self.files_settled.set()
                outcome = view.outcome(time.monotonic())
            self.outcome = outcome
            self.files_settled.set()
            self._container_done.set()
            log_thread = self._log_thread
            if outcome is not None and log_thread is not None:
                log_thread.join(LOG_DRAIN_SECONDS)
                if log_thread.is_alive():
                    self._log.warning("the log of the action could not be read to its end")
        finally:
            for watch in self._watches.values():
                watch.close()
            self.finished.set()

    def files(self) -> tuple[str, str]:
        """``(termination message, failure reason)`` as last seen in the pod's status (final once
        :attr:`files_settled` is set)."""
        return self._files

    def _list_pods(self, view: JobView) -> None:
        try:
            listing = self._api.list("pods", label_selector=self._pod_selector)
        except KubeApiError as exc:
            self._log.debug("listing the Job's pods: %s", exc)
            return
        view.apply_pod(WatchEvent("SYNC", tuple(listing.get("items") or ())), time.monotonic())

    def _job_warning(self, job: JSON) -> str:
        """``reason: message`` of the Job's latest warning Event, ``""`` when there is none (or
        Events cannot be read: they only explain, nothing depends on them)."""
        name = str(job.get("metadata", {}).get("name") or "")
        try:
            listing = self._api.list(
                "events", field_selector=f"involvedObject.kind=Job,involvedObject.name={name}"
            )
        except KubeApiError as exc:
            self._log.debug("cannot read the Events of Job %s: %s", name, exc)
            return ""
        warnings = [event for event in listing.get("items") or () if event.get("type") == "Warning"]
        if not warnings:
            return ""
        latest = max(
            warnings, key=lambda event: str(event.get("lastTimestamp") or event.get("eventTime") or "")
        )
        return f"{latest.get('reason') or 'Warning'}: {latest.get('message') or ''}"

    def _follow_log(self, view: JobView) -> None:
        pod = view.pod_to_follow()
        if pod is not None and self._log_thread is None and not self._stopped.is_set():
            self._log_thread = self._spawn(self._read_log, pod)
        if view.container_done():
            self._container_done.set()

    def _read_log(self, pod: str) -> None:
        splitter = LineSplitter(self._output)
        failures = 0
        retry = ApiRetry()
        try:
            while not self._stopped.is_set():
                final = self._container_done.is_set()
                try:
                    ended = self._read_log_once(pod, final, splitter)
                except KubeApiError as exc:
                    if exc.status in (400, 404) and final:  # the pod is being removed or gone
                        self._log.debug("the log of pod %s is gone: %s", pod, exc)
                        return
                    if exc.passing:  # the API is away (or the stream broke): read on from here later
                        self._stopped.wait(retry.delay(exc))
                        continue
                    failures += 1
                    if failures > LOG_RETRIES:
                        self._log.warning("cannot read the log of pod %s: %s", pod, printable(exc))
                        return
                    self._container_done.wait(LOG_REOPEN_WAIT)
                    continue
                if final and ended:
                    return
                failures = 0
                retry.reset()
                # a followed stream ended: the container exited (its end is on the way through
                # the pods' watch), or something cut the stream while it still runs
                if ended and self._container_done.wait(LOG_REOPEN_WAIT) and self._read_whole(pod):
                    return
        finally:
            splitter.close()

    def _read_whole(self, pod: str) -> bool:
        """True when the log's last lines are the last lines delivered (the log was read whole)."""
        try:
            stream = self._open_log(pod, follow=False, tail_lines=TAIL_CHECK_LINES)
        except KubeApiError as exc:
            self._log.debug("reading the end of the log of pod %s: %s", pod, exc)
            return False
        if stream is None:
            return True  # stopping: nothing more is wanted
        tail = bytearray()
        try:
            while (chunk := stream.read()) and len(tail) <= TAIL_KEEP_BYTES:
                tail += chunk
        except KubeApiError:
            return False
        finally:
            self._close_log(stream)
        return len(tail) <= min(TAIL_KEEP_BYTES, len(self._recent)) and self._recent.endswith(tail)

    def _open_log(self, pod: str, *, follow: bool, tail_lines: int | None = None) -> ByteStream | None:
        """A log stream that :meth:`stop` can interrupt; ``None`` when stopping."""
        stream = self._api.pod_log(pod, CONTAINER_NAME, follow=follow, tail_lines=tail_lines)
        with self._lock:
            if self._stopped.is_set():
                stream.close()
                return None
            self._log_stream = stream
        return stream

    def _close_log(self, stream: ByteStream) -> None:
        with self._lock:
            self._log_stream = None
        stream.close()

    def _read_log_once(self, pod: str, final: bool, splitter: LineSplitter) -> bool:
        """Read one log stream from its start, passing on what lies past the bytes delivered so
        far; ``True`` when the stream ended (rather than was interrupted)."""
        stream = self._open_log(pod, follow=not final)
        if stream is None:
            return False
        skip = self._delivered
        try:
            while chunk := stream.read():
                if skip >= len(chunk):
                    skip -= len(chunk)
                    continue
                if skip:
                    chunk, skip = chunk[skip:], 0
                self._delivered += len(chunk)
                self._recent += chunk
                if len(self._recent) > TAIL_KEEP_BYTES:
                    del self._recent[:-TAIL_KEEP_BYTES]
                splitter.feed(chunk)
        finally:
            self._close_log(stream)
        return not self._stopped.is_set()
