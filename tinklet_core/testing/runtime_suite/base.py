"""The behaviour suite's base: what a runtime plugin's test class sets (runtime name, image,
what the runtime can do, options) and the fixtures every group of tests uses (the runtime opened
through the plugin manager, one action run through the hook)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from tinklet_core.action_failure import CONTAINER_DIR
from tinklet_core.model import Action, Outcome, RegistryCredentials
from tinklet_core.plugins import find_runtime, load_plugins, open_runtime
from tinklet_core.proxy import ProxySettings
from tinklet_core.runtime import ActionContext, Privilege, PullPolicy, Runtime, RuntimeSettings

#: Unique per test session: opening a runtime removes its agent's leftovers, so two sessions
#: sharing one daemon must not share an agent id.
AGENT = f"suite-{uuid.uuid4().hex[:8]}"


def make_action(image: str, command: list[str], **fields: Any) -> Action:
    """An action with unique ids, for tests."""
    unique = f"{time.monotonic_ns()}"
    values: dict[str, Any] = {
        "workflow_id": f"wf-{unique}",
        "task_id": "task",
        "action_id": f"action-{unique}",
        "agent_id": AGENT,
        "name": "suite",
        "image": image,
        "command": tuple(command),
    }
    values.update(fields)
    return Action(**values)


class SuiteBase:
    """What a plugin's suite class sets and overrides, and the fixtures the tests share."""

    runtime_name: ClassVar[str] = ""
    image: ClassVar[str] = "tinklet/busybox:latest"
    #: False for runtimes that refuse host namespaces by default (kube without allow-host).
    host_namespaces: ClassVar[bool] = True
    #: False for runtimes without host bind mounts by default.
    host_volumes: ClassVar[bool] = True
    #: False when the runtime's test environment never contacts a registry (a test double
    #: whose nodes pull nothing); the credential request is still checked.
    pulls_from_registries: ClassVar[bool] = True
    #: False when only ``/tinkerbell/failure-message`` comes back from the action, not
    #: ``failure-reason`` (Kubernetes with its failure-reason helper turned off: a container has
    #: one termination message).
    reports_failure_reason: ClassVar[bool] = True
    #: False when a TIMEOUT is reported before the killed action's files can be read (a
    #: runtime that cannot wait for the killed action's final state).
    reports_failure_on_timeout: ClassVar[bool] = True
    #: True when the runtime's image pulls follow tinklet's proxy settings (a Podman service
    #: tinklet starts), False when someone else's settings decide (a running dockerd).
    pulls_through_proxy: ClassVar[bool] = False

    def plugin_modules(self) -> list[str]:
        """Plugin modules to load besides the installed entry points (``-p MODULE``)."""
        return []

    def runtime_options(self) -> dict[str, Any]:
        """Options for the runtime, as ``settings.options`` (override as needed)."""
        return {}

    def cli_options(self) -> list[str]:
        """Extra command-line flags for the worker process (override as needed)."""
        return []

    def core_options(self) -> dict[str, str]:
        """tinklet's own options for every run of the suite, by name (``{"action-privilege":
        "all-caps"}`` on a host that refuses privileged containers): the worker processes get
        them as flags, and the runtime opened in-process gets ``action-privilege``."""
        return {}

    @property
    def privilege(self) -> Privilege:
        """The privilege actions run with: ``action-privilege`` of :meth:`core_options`."""
        return Privilege(self.core_options().get("action-privilege", Privilege.PRIVILEGED.value))

    def _core_flags(self) -> list[str]:
        return [arg for name, value in self.core_options().items() for arg in (f"--{name}", value)]

    def worker_env(self) -> dict[str, str]:
        """Extra environment for the worker process (override as needed)."""
        return {}

    def leftovers(self) -> list[str]:
        """Ids of runtime objects labelled ``tinklet.action`` that still exist."""
        raise NotImplementedError

    # -- fixtures ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def opened(
        self,
        pull_policy: PullPolicy = PullPolicy.MISSING,
        privilege: Privilege | None = None,
        proxy: ProxySettings | None = None,
    ) -> Iterator[Runtime]:
        """The runtime, opened through the plugin manager as ``tinklet --runtime`` would, with
        these settings (``privilege``: :attr:`privilege` unless given); closed afterwards, when
        nothing it made may be left."""
        loaded = load_plugins(extra=self.plugin_modules())
        spec = find_runtime(loaded, self.runtime_name)
        settings = RuntimeSettings(
            agent_id=AGENT,
            pull_policy=pull_policy,
            privilege=privilege or self.privilege,
            proxy=proxy or ProxySettings(),
            options=self.runtime_options(),
        )
        opened = open_runtime(loaded.manager, spec, settings)
        self._manager = loaded.manager
        self._settings = settings
        try:
            yield opened
        finally:
            loaded.manager.unregister(opened)
            opened.close()
        assert self.leftovers() == [], "the runtime left objects behind"

    @pytest.fixture
    def runtime(self) -> Iterator[Runtime]:
        """The runtime with default settings (:attr:`privilege`, pull when missing)."""
        with self.opened() as opened:
            yield opened

    def execute(
        self,
        action: Action,
        deadline_in: float | None = None,
        cancel_after: float | None = None,
        cancel_when: Callable[[], bool] | None = None,
        login: RegistryCredentials | None = None,
    ) -> tuple[Outcome, list[str]]:
        """Run one action through the hook; returns the outcome and the output lines.

        ``cancel_when`` is polled (for at most a minute) and shutdown starts once it is true.
        Images whose credentials the runtime asked for are kept in ``self.asked_credentials``;
        the answer is ``login``.
        """
        lines: list[str] = []
        cancelled = threading.Event()
        self.asked_credentials: list[str] = []
        if cancel_after is not None:
            threading.Timer(cancel_after, cancelled.set).start()
        if cancel_when is not None:
            threading.Thread(target=_set_when, args=(cancel_when, cancelled), daemon=True).start()

        def credentials(image: str) -> RegistryCredentials | None:
            self.asked_credentials.append(image)
            return login

        context = ActionContext(
            action=action,
            settings=self._settings,
            deadline=None if deadline_in is None else time.monotonic() + deadline_in,
            cancelled=cancelled,
            output=lines.append,
            registry_credentials=credentials,
            log=logging.getLogger("tinklet.suite"),
        )
        try:
            outcome = self._manager.hook.tinklet_execute_action(context=context)
        finally:
            cancelled.set()  # stops a cancel_when poller
        return outcome, lines

    def write_failure(self, reason: str, message: str) -> str:
        """Shell that writes the action's failure files as the contract says."""
        return (
            f"printf '%s\\n' '{reason}' > {CONTAINER_DIR}/failure-reason; "
            f"printf '%s\\n' '{message}' > {CONTAINER_DIR}/failure-message"
        )

    def startup_allowance(self) -> float:
        """Seconds a runtime may add to a deadline for scheduling (a cluster needs more)."""
        return 0.0


def _set_when(condition: Callable[[], bool], event: threading.Event, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        if condition():
            break
        time.sleep(0.1)
    event.set()
