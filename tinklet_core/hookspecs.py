"""The hooks tinklet calls, one typed stub each. Implement them with :data:`hookimpl`.

Hook names carry the ``tinklet_`` prefix so stray methods never match by accident; a plugin that
implements a name not listed here gets a warning naming it. Arguments are passed by name, so an
implementation may accept only the ones it uses.

The core calls every hook one plugin at a time (through pluggy, so an implementation may take
only the arguments it uses), and what a plugin gets wrong is pinned on it: a start-up hook
(``tinklet_runtimes``, ``tinklet_transports``, ``tinklet_options``) that raises or returns the
wrong type is reported by name and skipped; after start-up, a wrong return type or an unexpected
error fails the action with a message naming the plugin and its distribution (a transport's is
retried with backoff), and the worker goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinklet_core.markers import PROJECT, hookimpl, hookspec

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    import grpc

    from tinklet_core.model import Action, Event, Outcome, PullProgress, RegistryCredentials
    from tinklet_core.options import PluginOption
    from tinklet_core.runtime import ActionContext, RuntimeSpec, WorkflowEnvironment
    from tinklet_core.tls import TlsSettings
    from tinklet_core.transports.spec import TransportSpec

__all__ = ["PROJECT", "hookimpl", "hookspec"]


@hookspec
def tinklet_runtimes() -> list[RuntimeSpec]:
    """Return the runtimes this plugin provides (usually one).

    Called by the core at start-up on every loaded plugin, to list runtimes and their options
    and to open the one named by ``--runtime``. Keep it cheap: import heavy client libraries in
    the spec's factory, not here. Runtime names must be unique across plugins: a name two
    plugins claim cannot be chosen until one of them is blocked with ``-p no:NAME``.
    """
    raise NotImplementedError


@hookspec
def tinklet_transports() -> list[TransportSpec]:
    """Return the transports this plugin provides (where actions come from, where status goes).

    Called by the core at start-up on every loaded plugin, to list transports and their options
    and to open the one named by ``--protocol`` (``tinklet run`` opens the one called ``file``).
    The core's own transports are built-in plugins (``core-v2``, ``core-file``…). Keep it cheap:
    import clients in the spec's factory. Names must be unique across plugins.
    """
    raise NotImplementedError


@hookspec
def tinklet_options() -> list[PluginOption]:
    """Return the options of a plugin that is not a runtime or transport (those declare theirs
    in their spec's ``options``).

    Called by the core at start-up on every loaded plugin, before the command line is read. Each
    option becomes a flag, a ``TINKLET_*`` variable and a config key, shown in ``--help`` under
    the plugin's name; its value goes only to this plugin's :func:`tinklet_configure`. A name
    the core or an earlier plugin already has is refused with a warning.
    """
    raise NotImplementedError


@hookspec
def tinklet_configure(options: Mapping[str, Any]) -> object | None:
    """Receive this plugin's own option values (keys with underscores), once, at start-up.

    Called by the core after settings are read and before any work starts, on each plugin that
    implements it, with only the values of the options that plugin declared. Return an object
    whose hook methods should run for the rest of this run (an exporter holding its server, for
    example; it is registered as a plugin, and its ``close()``, if any, is called at exit), or
    ``None``; annotate the return type with that object's class and ``tinklet plugins list``
    shows its hooks without calling this. An implementation that needs no options may take no
    arguments. Raising stops tinklet with the error's message.
    """


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

    Called by the worker when it knows a workflow is over here: an action did not succeed,
    an action of another workflow arrived, or tinklet stops (a workflow file also ends after its
    last action). A Tink server does not tell a worker that it ran a workflow's last action, so
    with a server this may come only when the next workflow starts or tinklet stops. Errors are
    logged, not fatal.
    """


@hookspec
def tinklet_rewrite_action(action: Action) -> Action | None:
    """Return a changed copy of ``action`` to run instead (``dataclasses.replace``), or ``None``.

    Called by the worker for each action after it reported RUNNING and before it runs: an image
    mirror, a registry rewrite, extra environment. Rewrites compose: each plugin gets the action
    as the previous plugin's rewrite left it, in pluggy's call order (``tryfirst`` first, else
    the plugin registered last first; see :mod:`tinklet_core.rewrites`). Ids and name are kept
    from the original (status is reported for the action the server handed out); the final
    status event carries the rewritten action. Raising, or returning something other than an
    ``Action`` or ``None``, fails the action with a message naming the plugin.
    """


@hookspec(firstresult=True)
def tinklet_execute_action(context: ActionContext) -> Outcome | None:
    """Run ``context.action`` and return its :class:`~tinklet_core.model.Outcome`.

    Called by the worker for each action after it reported RUNNING. Execution has one owner:
    only the opened runtime's implementation runs the action (another plugin's plain
    implementation is ignored with a warning). Other plugins wrap it with a hook wrapper,
    ``@hookimpl(wrapper=True)``, which runs around the runtime: code before ``yield`` sees the
    context, ``outcome = yield`` gets the runtime's result (or raises its error), and the wrapper
    returns the outcome, a different one, or raises :class:`~tinklet_core.errors.ActionRefused`
    before yielding to refuse the action by policy. A wrapper that returns something other than
    an ``Outcome`` or raises another error fails the action with a message naming it; one that
    forgets ``return outcome`` keeps the runtime's outcome, with a warning naming it (see
    :mod:`tinklet_core.execution`). The implementation pulls the image (per
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

    Called after the transport accepted the event, from a separate thread that takes events
    from a queue, so a slow observer never slows an action or the worker (events arrive in
    order; if observers fall a thousand events behind, new ones are dropped with a
    warning). For metrics and audit logs. Errors are logged, not fatal.
    """


# Observer hooks below are all delivered like tinklet_action_event: in order, from the observer
# thread, never on an action's path; errors are logged, not fatal. With no implementation the
# worker does not even queue them.


@hookspec
def tinklet_worker_state(running: bool, runtime: str, protocol: str, agent_id: str) -> None:
    """Observe the worker starting (``running`` true, its runtime open) and stopping.

    Called once when the worker loop starts and once when it ends, with the runtime's name, the
    protocol (``--protocol``'s value, or ``file`` for ``tinklet run``) and the agent id, so
    observers can label what they record. For "worker up" metrics.
    """


@hookspec
def tinklet_server_contact(reachable: bool, at: float) -> None:
    """Observe each exchange with the server: asking for an action or reporting a state.

    Called after every such exchange, ``reachable`` true when the server answered (with work or
    with "nothing for you"), false when it could not be reached or refused the call; ``at`` is
    the ``time.time()`` of the answer. For "last contact" metrics and readiness checks.
    """


@hookspec
def tinklet_report_retry(event: Event, gave_up: bool) -> None:
    """Observe a status report the server did not accept.

    Called each time reporting ``event`` failed: ``gave_up`` false when the worker will retry
    it, true when it never can be delivered (a non-retryable error, or tinklet is stopping).
    """


@hookspec
def tinklet_pull_progress(action: Action, progress: PullProgress) -> None:
    """Observe an image pull a runtime reports through ``ActionContext.pull_progress``.

    Called for each :class:`~tinklet_core.model.PullProgress` record (STARTED, PROGRESS,
    FINISHED or FAILED) of the pull made for ``action``. Time a pull from the ``at`` of its
    STARTED record to that of its FINISHED or FAILED one.
    """
