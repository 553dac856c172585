"""Wiring one run of tinklet: core plugins, plugin options, the chosen runtime, a transport, the worker.

The CLI parses and reports; this module builds and runs. Both entry points (serve a Tink
server, run a workflow file) share the same runtime opening and worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pluggy

from tinklet_core import agent_attributes
from tinklet_core.config import Settings
from tinklet_core.engine_wait import open_when_ready
from tinklet_core.errors import ActionInterrupted, ConfigError, PluginError, TinkletError
from tinklet_core.model import Event
from tinklet_core.plugin_calls import error_line
from tinklet_core.plugins import (
    CONFIGURED_PREFIX,
    RUNTIME_PREFIX,
    LoadedPlugins,
    find_runtime,
    find_transport,
    open_runtime,
    unknown_hooks,
)
from tinklet_core.runtime import Runtime, RuntimeSettings, RuntimeSpec
from tinklet_core.tls import load_tls, verification_failure
from tinklet_core.transports.base import Transport
from tinklet_core.transports.builtin import FILE_TRANSPORT
from tinklet_core.transports.spec import TransportSettings, TransportSpec
from tinklet_core.worker import Worker, WorkerOptions

__all__ = ["LOCAL_AGENT", "configured_plugins", "run_workflow", "serve"]

LOCAL_AGENT = "local"
log = logging.getLogger("tinklet")


@contextmanager
def configured_plugins(loaded: LoadedPlugins, settings: Settings) -> Iterator[None]:
    """Call each plugin's ``tinklet_configure`` with only its own option values, register what
    it returns for the run, and close those objects when the run ends."""
    with ExitStack() as stack:
        for name, call in list(loaded.calls.each("tinklet_configure")):
            try:
                result = call(options=dict(settings.options_of(name)))
            except Exception as exc:
                raise PluginError(f"{loaded.origin(name)}: configuring failed: {exc}") from None
            if result is None:
                continue
            loaded.manager.register(result, name=f"{CONFIGURED_PREFIX}{name}")
            stack.callback(_unregister_and_close, loaded.manager, result)
            for hook in unknown_hooks(loaded.manager, result):
                log.warning("%s: %r is not a tinklet hook; it is never called", loaded.origin(name), hook)
        yield


def _unregister_and_close(manager: pluggy.PluginManager, plugin: object) -> None:
    manager.unregister(plugin)
    close = getattr(plugin, "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:
            log.warning("closing %s failed: %s", type(plugin).__name__, exc)


@contextmanager
def opened_runtime(
    loaded: LoadedPlugins,
    spec: RuntimeSpec,
    runtime_settings: RuntimeSettings,
    wait_until: threading.Event | None = None,
    max_backoff: float = 5.0,
) -> Iterator[Runtime]:
    """Open the runtime ``spec`` describes with ``runtime_settings`` and close it however the
    run ends. A factory that fails other than with a tinklet error (``RuntimeUnavailable``) is a
    :class:`PluginError` naming the plugin; a ``close()`` that raises is logged. With
    ``wait_until``, an engine that is not up yet is waited for (retries at most ``max_backoff`` s
    apart) until that event is set (:func:`tinklet_core.engine_wait.open_when_ready`)."""
    origin = loaded.origin(f"{RUNTIME_PREFIX}{spec.name}")

    def opening() -> Runtime:
        try:
            return open_runtime(loaded.manager, spec, runtime_settings)
        except TinkletError:
            raise
        except Exception as exc:
            raise PluginError(f"{origin}: opening runtime {spec.name!r} failed: {error_line(exc)}") from None

    runtime = open_when_ready(opening, wait_until, max_backoff, log)
    for hook in unknown_hooks(loaded.manager, runtime):
        log.warning(
            "runtime %r implements %r, which is not a tinklet hook; it is never called", spec.name, hook
        )
    try:
        yield runtime
    finally:
        loaded.manager.unregister(runtime)
        try:
            runtime.close()
        except Exception as exc:
            log.warning("%s: closing runtime %r failed: %s", origin, spec.name, error_line(exc))


def server_transport(loaded: LoadedPlugins, settings: Settings, stop: threading.Event) -> Transport:
    """The transport chosen by ``--protocol`` to ``--tink`` for ``--identifier``, plain or TLS
    (``--tink`` only for a transport whose spec says it needs a server address)."""
    spec = find_transport(loaded, settings.protocol)
    if spec.needs_server and not settings.tink:
        raise ConfigError("missing --tink HOST:PORT (or TINKLET_TINK, or 'tink' in the config file)")
    if not settings.identifier:
        raise ConfigError(
            "missing --identifier ID (or TINKLET_IDENTIFIER, or 'identifier' in the config file)"
        )
    credentials = None
    tls = settings.tls
    if tls.enabled:
        tls = load_tls(tls, stop, settings.max_backoff, address=settings.tink)  # bad files: exit 2
        # gRPC says only CERTIFICATE_VERIFY_FAILED
        problem = verification_failure(settings.tink, tls) if settings.tink else None
        if problem:
            log.warning("tink server %s: its TLS certificate fails verification: %s", settings.tink, problem)
        credentials = _channel_credentials(loaded, tls)
        if credentials is None:
            raise ConfigError("--tls is on but no plugin provided channel credentials")
    return _opened_transport(
        loaded,
        spec,
        TransportSettings(
            target=settings.tink or "",
            identifier=settings.identifier,
            credentials=credentials,
            server_name=tls.server_name,
            cancelled=stop,
            max_backoff=settings.max_backoff,
            options=settings.options_of(f"transport:{spec.name}"),
            agent_attributes=agent_attributes.gather() if settings.agent_attributes else None,
            report_grace=settings.report_grace,
        ),
    )


def _channel_credentials(loaded: LoadedPlugins, tls: Any) -> Any:
    """The first plugin's TLS channel credentials; one that raises stops tinklet, named."""
    for plugin, call in loaded.calls.each("tinklet_grpc_channel_credentials"):
        try:
            credentials = call(tls=tls)
        except TinkletError:
            raise
        except Exception as exc:
            raise PluginError(
                f"{loaded.origin(plugin)}: TLS channel credentials: {error_line(exc)}"
            ) from None
        if credentials is not None:
            return credentials
    return None


def _opened_transport(
    loaded: LoadedPlugins, spec: TransportSpec, transport_settings: TransportSettings
) -> Transport:
    """The transport ``spec`` opens, guarded so that its mistakes never end the worker."""
    provider = next((p.plugin for p in loaded.transports.values() if p.spec is spec), spec.name)
    try:
        transport = spec.factory(transport_settings)
    except TinkletError:
        raise
    except Exception as exc:
        what = f"opening transport {spec.name!r} failed: {error_line(exc)}"
        raise PluginError(f"{loaded.origin(provider)}: {what}") from None
    from tinklet_core.transports.guarded import GuardedTransport  # only when a worker runs

    return GuardedTransport(transport, loaded.origin(provider))


def serve(
    loaded: LoadedPlugins,
    settings: Settings,
    stop: threading.Event,
    on_delivered: Callable[[Event], None] | None = None,
) -> None:
    """Work for the Tink server until ``stop`` is set (``on_delivered`` is called with every
    event the server accepted, as for :func:`run_workflow`).

    Everything a user can get wrong (flags, runtime name, TLS files) is checked before the
    runtime is opened, so a typo never waits on a daemon.
    """
    spec = find_runtime(loaded, settings.runtime)
    try:
        transport = server_transport(loaded, settings, stop)
    except ActionInterrupted:  # stopped while fetching the TLS CA
        return
    agent_id = settings.identifier or ""
    runtime_settings = settings.runtime_settings(agent_id, f"runtime:{spec.name}")
    try:
        with (
            configured_plugins(loaded, settings),
            opened_runtime(loaded, spec, runtime_settings, stop, settings.max_backoff) as runtime,
        ):
            log.info(
                "worker %s started: runtime %s, protocol %s%s%s",
                settings.identifier,
                settings.runtime,
                settings.protocol,
                f", tink server {settings.tink}" if settings.tink else "",
                " (TLS)" if settings.tls.enabled else "",
            )
            opened = (spec.name, runtime, runtime_settings)
            _work(loaded, settings, opened, transport, stop, on_delivered, settings.protocol)
    except ActionInterrupted:  # stopped while waiting for the engine
        return
    finally:
        transport.close()


def run_workflow(
    loaded: LoadedPlugins,
    settings: Settings,
    workflow_file: str,
    stop: threading.Event,
    on_delivered: Callable[[Event], None],
) -> None:
    """Run every action of the workflow in ``workflow_file`` here, in order, until one does not
    succeed, through the ``file`` transport.

    Without ``--identifier`` every such run on this host is agent ``local``: another one may be
    running, so its running containers are not taken for leftovers of a crashed run."""
    agent_id = settings.identifier or LOCAL_AGENT
    shared_agent = not settings.identifier
    transport_spec = find_transport(loaded, FILE_TRANSPORT)
    spec = find_runtime(loaded, settings.runtime)
    transport = _opened_transport(
        loaded,
        transport_spec,
        TransportSettings(
            target=workflow_file,
            identifier=agent_id,
            cancelled=stop,
            max_backoff=settings.max_backoff,
            options=settings.options_of(f"transport:{transport_spec.name}"),
        ),
    )
    runtime_settings = settings.runtime_settings(agent_id, f"runtime:{spec.name}", shared_agent)
    try:
        with (
            configured_plugins(loaded, settings),
            opened_runtime(loaded, spec, runtime_settings) as runtime,
        ):
            opened = (spec.name, runtime, runtime_settings)
            _work(loaded, settings, opened, transport, stop, on_delivered, FILE_TRANSPORT)
    finally:
        transport.close()


def _work(
    loaded: LoadedPlugins,
    settings: Settings,
    opened: tuple[str, Runtime, RuntimeSettings],
    transport: Transport,
    stop: threading.Event,
    on_delivered: Callable[[Event], Any] | None,
    protocol: str,
) -> None:
    """Run the worker on the ``opened`` runtime (its name, object and the one settings record
    it was opened with, which every action's context also carries)."""
    from tinklet_core.execution import execution_caller  # only when a worker runs

    runtime_name, runtime, runtime_settings = opened
    worker = Worker(
        transport,
        loaded.manager,
        runtime_settings,
        stop,
        WorkerOptions(max_backoff=settings.max_backoff, log_output=settings.action_output == "log"),
        on_delivered=on_delivered,
        execute=execution_caller(loaded.manager, runtime, loaded.origin),
        runtime_name=runtime_name,
        protocol=protocol,
        origin=loaded.origin,
    )
    worker.run()
