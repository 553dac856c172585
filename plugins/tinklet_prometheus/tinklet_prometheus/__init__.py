"""tinklet-prometheus: metrics, ``/healthz`` and ``/readyz`` for tinklet, as a plugin.

Built only on tinklet's public hooks: ``--metrics-address`` comes in through
:func:`tinklet_options` / :func:`tinklet_configure`, and the exporter that configure returns
observes the worker through the observer hooks. Nothing is imported from ``prometheus_client``
unless ``--metrics-address`` is set, so an installed but unused plugin costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinklet_core.hookspecs import hookimpl
from tinklet_core.options import PluginOption
from tinklet_prometheus.address import parse_address

DEFAULT_HEALTH_WINDOW = 120.0  # above the 90 s a GetAction may be held by a server that retries


@hookimpl
def tinklet_options() -> list[PluginOption]:
    """``--metrics-address`` and ``--metrics-health-window``."""
    return [
        PluginOption(
            "metrics-address",
            "Serve Prometheus metrics on http://HOST:PORT/metrics, with /healthz and /readyz "
            "(off when empty).",
        ),
        PluginOption(
            "metrics-health-window",
            "Seconds the worker loop may go without a turn (/healthz) or without an answer from the server "
            "(/readyz) between actions before the check fails.",
            kind=float,
            default=DEFAULT_HEALTH_WINDOW,
        ),
    ]


@hookimpl
def tinklet_configure(options: Mapping[str, Any]) -> object | None:
    """Start the exporter when ``--metrics-address`` is set; otherwise do nothing at all."""
    if not options.get("metrics_address"):
        return None
    host, port = parse_address(options["metrics_address"])
    window = float(options.get("metrics_health_window") or DEFAULT_HEALTH_WINDOW)
    if window <= 0:
        raise ValueError("--metrics-health-window must be a positive number of seconds")
    from tinklet_prometheus.exporter import Exporter  # prometheus_client only from here on

    return Exporter(host, port, window)
