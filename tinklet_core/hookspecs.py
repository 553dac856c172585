"""The hooks tinklet calls, one typed stub each. Implement them with :data:`hookimpl`.

Hook names carry the ``tinklet_`` prefix so stray methods never match by accident. Arguments are
passed by name, so an implementation may accept only the ones it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import grpc

    from tinklet_core.model import Event, Outcome, RegistryCredentials
    from tinklet_core.runtime import ActionContext, RuntimeSpec, WorkflowEnvironment
    from tinklet_core.tls import TlsSettings

PROJECT = "tinklet"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def tinklet_runtimes() -> list[RuntimeSpec]:
    """Return the runtimes this plugin provides (usually one).

    Called by the core at start-up on every loaded plugin, to list runtimes and their options
    and to open the one named by ``--runtime``. Keep it cheap: import heavy client libraries in
    the spec's factory, not here. Runtime names must be unique across plugins.
    """
    raise NotImplementedError


@hookspec
def tinklet_prepare_environment(environment: WorkflowEnvironment) -> None:
    """Prepare what a workflow's actions share (networks, volumes, pull secrets…).

    Called by the worker once per workflow, before that workflow's first action runs here, on
    the opened runtime and on every other plugin that implements it. Raising fails the action
    that triggered it, with the error's message.
    """


@hookspec
def tinklet_cleanup_environment(environment: WorkflowEnvironment) -> None:
    """Remove what :func:`tinklet_prepare_environment` made.

    Called by the worker when a workflow ends here (its last action ran, an action did not
    succeed, another workflow started, or tinklet stops). Errors are logged, not fatal.
    """


@hookspec(firstresult=True)
def tinklet_execute_action(context: ActionContext) -> Outcome | None:
    """Run ``context.action`` and return its :class:`~tinklet_core.model.Outcome`.

    Called by the worker for each action after it reported RUNNING. The opened runtime
    implements it; the first non-``None`` result wins, so a wrapper plugin registered later may
    take an action over (``None`` means "not mine"). The implementation pulls the image (per
    ``context.settings.pull_policy``, with ``context.registry_credentials``), starts the action,
    streams each output line to ``context.output``, kills it at ``context.deadline`` (TIMEOUT),
    stops it when ``context.cancelled`` is set (raise ``ActionInterrupted``) and always removes
    what it created.
    """


@hookspec(firstresult=True)
def tinklet_registry_credentials(registry: str, image: str) -> RegistryCredentials | None:
    """Return the credentials to pull ``image`` from ``registry``, or ``None`` if you have none.

    Called by runtimes (through ``ActionContext.registry_credentials``) before pulling. The
    core's own implementation answers from ``--registry`` and ``~/.docker/config.json``; a
    plugin registered later (ECR, Vault…) is asked first.
    """


@hookspec(firstresult=True)
def tinklet_grpc_channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials | None:
    """Return the channel credentials for the TLS connection to the Tink server.

    Called by the gRPC transport once, only when TLS is on. The core's own implementation
    covers system roots, a CA file, and a client certificate (mTLS); ``None`` means "no
    opinion" and lets the next implementation answer.
    """


@hookspec
def tinklet_action_event(event: Event) -> None:
    """Observe every status event the worker reports (RUNNING and the final one).

    Called after the transport accepted the event. For metrics and audit logs; must not block.
    """
