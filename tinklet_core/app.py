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
from tinklet_core.errors import ActionInterrupted, ConfigError, PluginError
from tinklet_core.model import Event, Outcome
from tinklet_core.plugins import (
    LoadedPlugins,
    find_runtime,
    find_transport,
    open_runtime,
    register_builtin,
    unknown_hooks,
)
from tinklet_core.registry_auth import ConfiguredRegistryCredentials
from tinklet_core.runtime import Runtime
from tinklet_core.tls import CoreChannelCredentials, load_tls, verification_failure
from tinklet_core.transports.base import Transport
from tinklet_core.transports.builtin import FILE_TRANSPORT
from tinklet_core.transports.spec import TransportSettings
from tinklet_core.worker import Worker, WorkerOptions

LOCAL_AGENT = "local"
log = logging.getLogger("tinklet")


def register_core_plugins(loaded: LoadedPlugins, settings: Settings) -> None:
    """The core's own hook implementations, each blockable with ``-p no:NAME``."""
    register_builtin(
        loaded, ConfiguredRegistryCredentials(settings.registries, settings.docker_config), "core-registry"
    )
    register_builtin(loaded, CoreChannelCredentials(), "core-tls")


@contextmanager
def configured_plugins(loaded: LoadedPlugins, settings: Settings) -> Iterator[None]:
    """Call each plugin's ``tinklet_configure`` with only its own option values, register what
    it returns for the run, and close those objects when the run ends."""
    with ExitStack() as stack:
        for impl in reversed(loaded.manager.hook.tinklet_configure.get_hookimpls()):
            name = impl.plugin_name
            try:
                result = impl.function(options=dict(settings.options_of(name)))
            except Exception as exc:
                raise PluginError(f"{loaded.origin(name)}: configuring failed: {exc}") from None
            if result is None:
                continue
            loaded.manager.register(result, name=f"configured:{name}")
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
    settings: Settings,
    agent_id: str,
    shared_agent: bool = False,
    wait_until: threading.Event | None = None,
) -> Iterator[Runtime]:
    """Open the runtime named by ``settings.runtime`` and close it however the run ends
    (``shared_agent``: see :attr:`tinklet_core.runtime.RuntimeSettings.shared_agent`). With
    ``wait_until``, an engine that is not up yet is waited for until that event is set
    (:func:`tinklet_core.engine_wait.open_when_ready`)."""
    spec = find_runtime(loaded, settings.runtime)
    runtime_settings = settings.runtime_settings(agent_id, f"runtime:{spec.name}", shared_agent)
    opening = lambda: open_runtime(loaded.manager, spec, runtime_settings)  # noqa: E731
    runtime = open_when_ready(opening, wait_until, settings.max_backoff, log)
    for hook in unknown_hooks(loaded.manager, runtime):
        log.warning(
            "runtime %r implements %r, which is not a tinklet hook; it is never called", spec.name, hook
        )
    try:
        yield runtime
    finally:
        loaded.manager.unregister(runtime)
        runtime.close()


def execution_caller(manager: pluggy.PluginManager, runtime: Runtime) -> Callable[..., Outcome | None]:
    """``tinklet_execute_action`` limited to its one owner, the opened runtime, and the hook
    wrappers around it. Another plugin's plain implementation would take actions away from the
    runtime the user chose: it is left out, with a warning."""
    others = []
    for impl in manager.hook.tinklet_execute_action.get_hookimpls():
        if impl.plugin is runtime or impl.wrapper or impl.hookwrapper:
            continue
        log.warning(
            "plugin %r implements tinklet_execute_action without wrapper=True; only the chosen runtime "
            "runs actions, so it is ignored",
            impl.plugin_name,
        )
        others.append(impl.plugin)
    if not others:
        return manager.hook.tinklet_execute_action  # type: ignore[no-any-return]
    return manager.subset_hook_caller("tinklet_execute_action", remove_plugins=others)  # type: ignore[no-any-return]


def server_transport(loaded: LoadedPlugins, settings: Settings, stop: threading.Event) -> Transport:
    """The transport chosen by ``--protocol`` to ``--tink`` for ``--identifier``, plain or TLS."""
    if not settings.tink:
        raise ConfigError("missing --tink HOST:PORT (or TINKLET_TINK, or 'tink' in the config file)")
    if not settings.identifier:
        raise ConfigError(
            "missing --identifier ID (or TINKLET_IDENTIFIER, or 'identifier' in the config file)"
        )
    spec = find_transport(loaded, settings.protocol)
    credentials = None
    if settings.tls.enabled:
        tls = load_tls(settings.tls, stop, settings.max_backoff)  # bad files: one line, exit 2
        problem = verification_failure(settings.tink, tls)  # gRPC says only CERTIFICATE_VERIFY_FAILED
        if problem:
            log.warning("tink server %s: its TLS certificate fails verification: %s", settings.tink, problem)
        credentials = loaded.manager.hook.tinklet_grpc_channel_credentials(tls=tls)
        if credentials is None:
            raise ConfigError("--tls is on but no plugin provided channel credentials")
    return spec.factory(
        TransportSettings(
            target=settings.tink,
            identifier=settings.identifier,
            credentials=credentials,
            server_name=settings.tls.server_name,
            cancelled=stop,
            max_backoff=settings.max_backoff,
            options=settings.options_of(f"transport:{spec.name}"),
            agent_attributes=agent_attributes.gather() if settings.agent_attributes else None,
            report_grace=settings.report_grace,
        )
    )


def serve(loaded: LoadedPlugins, settings: Settings, stop: threading.Event) -> None:
    """Work for the Tink server until ``stop`` is set.

    Everything a user can get wrong (flags, runtime name, TLS files) is checked before the
    runtime is opened, so a typo never waits on a daemon.
    """
    find_runtime(loaded, settings.runtime)
    try:
        transport = server_transport(loaded, settings, stop)
    except ActionInterrupted:  # stopped while fetching the TLS CA
        return
    try:
        with (
            configured_plugins(loaded, settings),
            opened_runtime(loaded, settings, settings.identifier or "", wait_until=stop) as runtime,
        ):
            log.info(
                "worker %s started: runtime %s, protocol %s, tink server %s%s",
                settings.identifier,
                settings.runtime,
                settings.protocol,
                settings.tink,
                " (TLS)" if settings.tls.enabled else "",
            )
            agent_id = settings.identifier or ""
            _work(loaded, settings, runtime, transport, stop, agent_id, None, settings.protocol)
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
    spec = find_transport(loaded, FILE_TRANSPORT)
    find_runtime(loaded, settings.runtime)
    transport = spec.factory(
        TransportSettings(
            target=workflow_file,
            identifier=agent_id,
            cancelled=stop,
            max_backoff=settings.max_backoff,
            options=settings.options_of(f"transport:{spec.name}"),
        )
    )
    try:
        with (
            configured_plugins(loaded, settings),
            opened_runtime(loaded, settings, agent_id, shared_agent) as runtime,
        ):
            _work(loaded, settings, runtime, transport, stop, agent_id, on_delivered, FILE_TRANSPORT)
    finally:
        transport.close()


def _work(
    loaded: LoadedPlugins,
    settings: Settings,
    runtime: Runtime,
    transport: Transport,
    stop: threading.Event,
    agent_id: str,
    on_delivered: Callable[[Event], Any] | None,
    protocol: str,
) -> None:
    spec = find_runtime(loaded, settings.runtime)
    worker = Worker(
        transport,
        loaded.manager,
        settings.runtime_settings(agent_id, f"runtime:{spec.name}"),
        stop,
        WorkerOptions(max_backoff=settings.max_backoff, log_output=settings.action_output == "log"),
        on_delivered=on_delivered,
        execute=execution_caller(loaded.manager, runtime),
        runtime_name=spec.name,
        protocol=protocol,
    )
    worker.run()
