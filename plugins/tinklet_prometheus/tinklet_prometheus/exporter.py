"""The exporter tinklet_configure returns: metrics fed by observer hooks, served over HTTP.

Every metric has ``runtime`` and ``protocol`` labels (from ``tinklet_worker_state``). Metrics
live in this exporter's own registry, so two exporters in one process never share state.
"""

from __future__ import annotations

import logging

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Action, Event, PullPhase, PullProgress, State
from tinklet_prometheus.health import Health
from tinklet_prometheus.http_server import Answer, BoundedHttpServer

log = logging.getLogger("tinklet.prometheus")
LABELS = ("runtime", "protocol")
FINAL_STATES = (State.SUCCESS, State.FAILED, State.TIMEOUT)
ACTION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))
PULL_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf"))
TEXT = "text/plain; charset=utf-8"


class Metrics:
    """The metric families, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.up = Gauge(
            "tinklet_worker_up", "1 while the worker loop runs (runtime open), else 0.", LABELS, registry=r
        )
        self.actions = Counter(
            "tinklet_actions", "Actions that ended here, by final state.", (*LABELS, "state"), registry=r
        )
        self.action_duration = Histogram(
            "tinklet_action_duration_seconds", "How long actions ran, by final state.",
            (*LABELS, "state"), buckets=ACTION_BUCKETS, registry=r,
        )  # fmt: skip
        self.pull_duration = Histogram(
            "tinklet_image_pull_duration_seconds", "How long image pulls took, by result (success, failure).",
            (*LABELS, "result"), buckets=PULL_BUCKETS, registry=r,
        )  # fmt: skip
        self.report_retries = Counter(
            "tinklet_report_retries", "Status reports the server did not accept and that are retried.",
            (*LABELS, "state"), registry=r,
        )  # fmt: skip
        self.report_give_ups = Counter(
            "tinklet_report_give_ups", "Status reports given up (never delivered).",
            (*LABELS, "state"), registry=r,
        )  # fmt: skip
        self.last_contact = Gauge(
            "tinklet_last_server_contact_timestamp_seconds",
            "Unix time the Tink server last answered.", LABELS, registry=r,
        )  # fmt: skip
        self.current_action = Gauge(
            "tinklet_current_action_info", "The action running now (value 1; no series between actions).",
            (*LABELS, "workflow", "task", "action"), registry=r,
        )  # fmt: skip


class Exporter:
    """Observes the worker through tinklet's observer hooks and serves what it saw."""

    def __init__(self, host: str, port: int, health_window: float) -> None:
        self.metrics = Metrics()
        self.health = Health(health_window)
        self._labels: tuple[str, str] = ("", "")
        self._pulls: dict[tuple[str, str], float] = {}
        try:
            self._server = BoundedHttpServer(host, port, self.answer)
        except OSError as exc:  # socket.gaierror too; its words, never the address itself
            raise OSError(f"cannot serve metrics on --metrics-address: {exc.strerror or exc}") from None
        log.info("serving metrics on %s (also /healthz, /readyz)", self._server.url("/metrics"))

    @property
    def port(self) -> int:
        """The port served (useful when asked for port 0)."""
        return self._server.port

    def answer(self, path: str) -> Answer:
        """What a GET of ``path`` answers: the metrics, a health check, or 404."""
        if path == "/metrics":
            return 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST
        if path in ("/healthz", "/readyz"):
            ok, why = self.health.live() if path == "/healthz" else self.health.ready()
            return (200 if ok else 503), f"{'ok' if ok else 'not ok'}: {why}\n".encode(), TEXT
        return 404, b"not found: try /metrics, /healthz or /readyz\n", TEXT

    @hookimpl
    def tinklet_worker_state(self, running: bool, runtime: str, protocol: str) -> None:
        """Label everything by runtime and protocol; worker up or down."""
        self._labels = (runtime, protocol)
        m = self.metrics
        m.up.labels(*self._labels).set(1 if running else 0)
        if running:  # every final state shows (as 0) from the start, so rate() and increase() work
            for state in FINAL_STATES:
                m.actions.labels(*self._labels, state.value)
            m.report_retries.labels(*self._labels, State.RUNNING.value)
            m.report_give_ups.labels(*self._labels, State.RUNNING.value)
        else:
            m.current_action.clear()
        self.health.worker(running)

    @hookimpl
    def tinklet_action_event(self, event: Event) -> None:
        """Count final states, time actions, show the current action."""
        m = self.metrics
        action = event.action
        if event.state is State.RUNNING:
            m.current_action.clear()
            ids = (action.workflow_id, action.task_id, action.action_id)
            m.current_action.labels(*self._labels, *ids).set(1)
            self.health.action(True)
            return
        if not event.state.is_final:
            return
        m.current_action.clear()
        self.health.action(False)
        m.actions.labels(*self._labels, event.state.value).inc()
        if event.duration is not None:
            m.action_duration.labels(*self._labels, event.state.value).observe(event.duration.total_seconds())

    @hookimpl
    def tinklet_server_contact(self, reachable: bool, at: float) -> None:
        """Remember when the server last answered."""
        if reachable:
            self.metrics.last_contact.labels(*self._labels).set(at)
        self.health.contact(reachable, at)

    @hookimpl
    def tinklet_report_retry(self, event: Event, gave_up: bool) -> None:
        """Count retried and abandoned status reports."""
        counter = self.metrics.report_give_ups if gave_up else self.metrics.report_retries
        counter.labels(*self._labels, event.state.value).inc()

    @hookimpl
    def tinklet_pull_progress(self, action: Action, progress: PullProgress) -> None:
        """Time each pull from its STARTED record to its FINISHED or FAILED one."""
        key = (action.action_id, progress.image)
        if progress.phase is PullPhase.STARTED:
            self._pulls[key] = progress.at
            return
        if progress.phase not in (PullPhase.FINISHED, PullPhase.FAILED):
            return
        started = self._pulls.pop(key, None)
        if started is None:
            return
        result = "success" if progress.phase is PullPhase.FINISHED else "failure"
        self.metrics.pull_duration.labels(*self._labels, result).observe(max(0.0, progress.at - started))

    def close(self) -> None:
        """Stop serving (called when tinklet exits)."""
        self._server.close()
