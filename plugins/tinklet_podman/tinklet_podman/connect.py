"""Choosing the Podman service the runtime talks to, and saying which one it chose.

In order: the socket given with ``--podman-socket`` (it must answer; it is never silently
replaced), ``$XDG_RUNTIME_DIR/podman/podman.sock``, ``/run/podman/podman.sock``, and otherwise
a private ``podman system service`` that tinklet starts and later stops (see
:mod:`tinklet_podman.service`). Imports podman-py, so only the opened runtime imports this.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tinklet_core.containers.engine import EngineFailure
from tinklet_core.engine_wait import unreachable
from tinklet_core.errors import RuntimeUnavailable
from tinklet_core.proxy import ProxySettings
from tinklet_core.redaction import described_value, without_value
from tinklet_core.runtime_helpers import innermost_reason
from tinklet_podman.engine import PodmanEngine, probe, probe_failure
from tinklet_podman.service import PodmanService, first_answering, socket_url, usual_sockets

log = logging.getLogger("tinklet.podman")


@dataclass
class Connection:
    """The engine for the chosen service, and the service itself when tinklet started it."""

    engine: PodmanEngine
    service: PodmanService | None
    how: str


def connect(options: Mapping[str, Any], proxy: ProxySettings | None = None) -> Connection:
    """Reach Podman as the module docstring says; :class:`RuntimeUnavailable` if impossible
    (:class:`~tinklet_core.errors.EngineNotReady` when the ``--podman-socket`` may yet answer).

    ``options`` are the runtime's resolved options: ``podman_socket``, ``xdg_runtime_dir``,
    ``podman_binary``. A service tinklet starts pulls through ``proxy``.
    """
    explicit = options.get("podman_socket")
    if explicit:
        url = socket_url(str(explicit))
        failure = probe_failure(url)
        if failure is not None:
            shown = described_value("podman_socket", url, path=True)
            reason = without_value(innermost_reason(failure), "podman_socket", str(explicit))
            message = f"Podman socket {shown} (--podman-socket) does not answer: {reason}"
            raise unreachable(message, url, failure)
        return _connected(url, None, "from --podman-socket")
    candidates = usual_sockets(options.get("xdg_runtime_dir"))
    found = first_answering(candidates, probe)
    if found is not None:
        return _connected(found, None, "found at a usual location")
    binary = str(options.get("podman_binary") or "podman")
    service = PodmanService.start(binary, probe, proxy=proxy)
    try:
        how = f"started by tinklet (pid {service.pid}); nothing answered at {', '.join(candidates)}"
        return _connected(service.url, service, how)
    except BaseException:
        service.stop()
        raise


def _connected(url: str, service: PodmanService | None, how: str) -> Connection:
    engine = PodmanEngine(url)
    try:
        version = engine.version()
    except EngineFailure as exc:
        engine.close()
        reason = without_value(str(exc), "podman_socket", url)
        raise RuntimeUnavailable(f"Podman at {engine.shown_url} is not usable: {reason}") from None
    log.info("using Podman %s at %s (%s)", version, engine.shown_url, how)
    return Connection(engine, service, how)


def restart_service(binary: str, proxy: ProxySettings | None = None) -> Connection | None:
    """Start a new private service after the one tinklet started died (pulling through
    ``proxy``, like the first); ``None`` (logged) when it cannot start yet, so the caller tries
    again later."""
    try:
        service = PodmanService.start(binary, probe, proxy=proxy)
    except RuntimeUnavailable as exc:
        log.warning("restarting the podman system service failed: %s", exc)
        return None
    try:
        return _connected(service.url, service, f"restarted by tinklet (pid {service.pid})")
    except RuntimeUnavailable as exc:
        service.stop()
        log.warning("the restarted podman system service is not usable: %s", exc)
        return None
