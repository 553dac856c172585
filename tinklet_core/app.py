"""Wiring one run of tinklet: core plugins, the chosen runtime, a transport, the worker.

The CLI parses and reports; this module builds and runs. Both entry points (serve a Tink
server, run a workflow file) share the same runtime opening and worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tinklet_core.config import Settings
from tinklet_core.errors import ConfigError
from tinklet_core.model import Event
from tinklet_core.plugins import LoadedPlugins, find_runtime, open_runtime, register_builtin
from tinklet_core.registry_auth import ConfiguredRegistryCredentials
from tinklet_core.runtime import Runtime
from tinklet_core.tls import CoreChannelCredentials
from tinklet_core.transports.base import Transport
from tinklet_core.transports.workflow_file import WorkflowFileTransport
from tinklet_core.worker import Worker, WorkerOptions
from tinklet_core.workflow import Workflow

LOCAL_AGENT = "local"
log = logging.getLogger("tinklet")


def register_core_plugins(loaded: LoadedPlugins, settings: Settings) -> None:
    """The core's own hook implementations, each blockable with ``-p no:NAME``."""
    register_builtin(
        loaded, ConfiguredRegistryCredentials(settings.registries, settings.docker_config), "core-registry"
    )
    register_builtin(loaded, CoreChannelCredentials(), "core-tls")


@contextmanager
def opened_runtime(loaded: LoadedPlugins, settings: Settings, agent_id: str) -> Iterator[Runtime]:
    """Open the runtime named by ``settings.runtime`` and close it however the run ends."""
    spec = find_runtime(loaded.manager, settings.runtime)
    runtime = open_runtime(loaded.manager, spec, settings.runtime_settings(agent_id))
    try:
        yield runtime
    finally:
        loaded.manager.unregister(runtime)
        runtime.close()


def server_transport(loaded: LoadedPlugins, settings: Settings, stop: threading.Event) -> Transport:
    """The gRPC transport to ``--tink`` for ``--identifier``, plain or TLS."""
    if not settings.tink:
        raise ConfigError("missing --tink HOST:PORT (or TINKLET_TINK, or 'tink' in the config file)")
    if not settings.identifier:
        raise ConfigError(
            "missing --identifier ID (or TINKLET_IDENTIFIER, or 'identifier' in the config file)"
        )
    credentials = None
    if settings.tls.enabled:
        credentials = loaded.manager.hook.tinklet_grpc_channel_credentials(tls=settings.tls)
        if credentials is None:
            raise ConfigError("--tls is on but no plugin provided channel credentials")
    from tinklet_core.transports.grpc_v2 import GrpcV2Transport  # grpc loads only for server mode

    return GrpcV2Transport(
        settings.tink,
        settings.identifier,
        credentials=credentials,
        cancelled=stop,
        server_name=settings.tls.server_name,
    )


def serve(loaded: LoadedPlugins, settings: Settings, stop: threading.Event) -> None:
    """Work for the Tink server until ``stop`` is set.

    Everything a user can get wrong (flags, runtime name, TLS files) is checked before the
    runtime is opened, so a typo never waits on a daemon.
    """
    find_runtime(loaded.manager, settings.runtime)
    transport = server_transport(loaded, settings, stop)
    try:
        with opened_runtime(loaded, settings, settings.identifier or ""):
            log.info(
                "worker %s started: runtime %s, tink server %s%s",
                settings.identifier,
                settings.runtime,
                settings.tink,
                " (TLS)" if settings.tls.enabled else "",
            )
            worker = Worker(
                transport,
                loaded.manager,
                settings.runtime_settings(settings.identifier or ""),
                stop,
                WorkerOptions(max_backoff=settings.max_backoff, log_output=settings.action_output == "log"),
            )
            worker.run()
    finally:
        transport.close()


def run_workflow(
    loaded: LoadedPlugins,
    settings: Settings,
    workflow: Workflow,
    stop: threading.Event,
    on_final: Callable[[Event], None],
) -> None:
    """Run every action of ``workflow`` here, in order, until one does not succeed."""
    transport = WorkflowFileTransport(workflow)
    agent_id = settings.identifier or LOCAL_AGENT
    with opened_runtime(loaded, settings, agent_id):
        worker = Worker(
            transport,
            loaded.manager,
            settings.runtime_settings(agent_id),
            stop,
            WorkerOptions(max_backoff=settings.max_backoff, log_output=settings.action_output == "log"),
            on_final=on_final,
        )
        worker.run()
