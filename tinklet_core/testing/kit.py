"""A test kit for every kind of plugin: run a workflow through chosen plugins on a real runtime.

The pytest plugin gives it as the ``tinklet_kit`` fixture (see
:mod:`tinklet_core.testing.pytest_plugin`); a plugin's tests then read like::

    def test_the_mirror_rewrites_docker_hub_images(tinklet_kit):
        run = tinklet_kit.run_workflow(
            tinklet_kit.workflow({"name": "hello", "command": ["echo", "hi"]}),
            plugins=["tinklet_mirror"],
            options={"mirror-prefix": "registry.local:5000"},
        )
        assert run.states() == [("hello", "RUNNING"), ("hello", "SUCCESS")]

:meth:`PluginKit.run_workflow` runs it as ``tinklet run`` does (through the ``file`` transport,
until the first action that does not succeed); :meth:`PluginKit.serve` works for a server as
``tinklet`` does: for the in-process test Tink server serving a workflow, or through any
transport (a transport plugin's own, with ``protocol`` and ``target``). Both load the installed
plugins plus ``plugins`` (module names, or plugin objects made in the test), read ``options``
(option names as on the command line, values as the command line or the config file would
give them) with the core's own settings, open the runtime and return a :class:`KitRun`: every
event the transport accepted, in order, and what tinklet logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinklet_core import app
from tinklet_core.config import ENV_PREFIX, Settings, load_settings
from tinklet_core.core_plugins import register_core_plugins
from tinklet_core.model import Event
from tinklet_core.plugins import LoadedPlugins, load_plugins
from tinklet_core.testing.tink_server import Report, TinkServer
from tinklet_core.workflow import parse_workflow

DEFAULT_IMAGE = "tinklet/busybox:latest"
Plugin = str | object
"""A plugin to load: a module name (as ``-p MODULE``), or a plugin object."""


@dataclass
class KitRun:
    """What one run delivered: the events the transport accepted (RUNNING and final states, in
    order), the reports the test Tink server received (server mode only) and the log lines."""

    events: list[Event] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def finals(self) -> list[Event]:
        """The final event (SUCCESS, FAILED or TIMEOUT) of each action, in order."""
        return [event for event in self.events if event.state.is_final]

    def states(self) -> list[tuple[str, str]]:
        """``(action name, state)`` of every event, in order."""
        return [(event.action.name, event.state.value) for event in self.events]

    def final(self, name: str) -> Event:
        """The final event of the action called ``name``."""
        return next(event for event in self.finals if event.action.name == name)

    def warnings(self) -> list[str]:
        """The log lines at WARNING or above."""
        return [line for line in self.log if line.split(" ", 1)[0] in ("WARNING", "ERROR", "CRITICAL")]


class PluginKit:
    """Runs workflows through plugins on a real runtime (see the module's docstring).

    ``runtime`` and ``image`` are the runtime to open and the busybox-like image
    :meth:`workflow` puts in actions; ``core_options`` are core settings for every run
    (``{"action-privilege": "all-caps"}`` on a host that refuses privileged containers);
    ``workdir`` holds the workflow files.
    """

    def __init__(
        self,
        workdir: Path,
        runtime: str = "docker",
        image: str = DEFAULT_IMAGE,
        core_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.workdir = workdir
        self.runtime = runtime
        self.image = image
        self.core_options = dict(core_options or {})
        self.agent = f"kit-{uuid.uuid4().hex[:8]}"

    def workflow(self, *actions: Mapping[str, Any], name: str = "kit") -> dict[str, Any]:
        """A one-task workflow (task ``t``) of ``actions``, each with :attr:`image` unless it
        names its own."""
        listed = [{"image": self.image, **action} for action in actions]
        return {"name": name, "tasks": [{"name": "t", "actions": listed}]}

    def run_workflow(
        self,
        workflow: Mapping[str, Any] | Path,
        plugins: Sequence[Plugin] = (),
        options: Mapping[str, Any] | None = None,
    ) -> KitRun:
        """Run ``workflow`` (a mapping in Tinkerbell's template format, or a file) as
        ``tinklet run`` does, with ``plugins`` loaded and ``options`` set."""
        path = workflow if isinstance(workflow, Path) else self._written(workflow)
        loaded, settings = self._prepared(plugins, options, identifier=self.agent)
        run = KitRun()
        with _captured_log(run.log):
            app.run_workflow(loaded, settings, str(path), threading.Event(), run.events.append)
        return run

    def serve(
        self,
        workflow: Mapping[str, Any] | None = None,
        *,
        plugins: Sequence[Plugin] = (),
        options: Mapping[str, Any] | None = None,
        protocol: str = "v2",
        target: str | None = None,
        until: Callable[[KitRun], bool] | None = None,
        timeout: float = 120.0,
    ) -> KitRun:
        """Work for a server as ``tinklet`` does until ``until(run)`` is true (or ``timeout``
        seconds pass; then :class:`TimeoutError`).

        With ``workflow``, the in-process test Tink server serves it (through ``protocol``, a
        gRPC transport) and the run ends by default when the server counts it finished.
        Without, ``protocol`` names any transport (a plugin's) and ``target`` is its
        ``--tink``; ``until`` is then required.
        """
        run = KitRun()
        server = None
        if workflow is not None:
            server = TinkServer([parse_workflow(dict(workflow), agent_id=self.agent)], self.agent)
            target = server.start()
        if until is None:
            if server is None:
                raise ValueError("serve() without a workflow needs until=")
            finished = server
            until = lambda _run: finished.all_finished  # noqa: E731
        flags = {"protocol": protocol, "tink": target, "max-backoff": "0.5", **(options or {})}
        try:
            loaded, settings = self._prepared(plugins, flags, identifier=self.agent)
            self._serve_until(loaded, settings, run, until, timeout)
        finally:
            if server is not None:
                run.reports = server.reports
                server.stop()
        return run

    def _serve_until(
        self,
        loaded: LoadedPlugins,
        settings: Settings,
        run: KitRun,
        until: Callable[[KitRun], bool],
        timeout: float,
    ) -> None:
        stop = threading.Event()
        changed = threading.Condition()
        failure: list[BaseException] = []

        def delivered(event: Event) -> None:
            with changed:
                run.events.append(event)
                changed.notify_all()

        def work() -> None:
            try:
                app.serve(loaded, settings, stop, delivered)
            except BaseException as exc:  # handed to the test's thread below
                failure.append(exc)
            with changed:
                changed.notify_all()

        with _captured_log(run.log):
            worker = threading.Thread(target=work, name="tinklet-kit-worker", daemon=True)
            worker.start()
            with changed:
                done = changed.wait_for(lambda: until(run) or not worker.is_alive(), timeout)
            stop.set()
            worker.join(30)
        if failure:
            raise failure[0]
        if not done:
            raise TimeoutError(f"the run did not end within {timeout:g} s; events: {run.states()}")

    def _prepared(
        self, plugins: Sequence[Plugin], options: Mapping[str, Any] | None, identifier: str | None
    ) -> tuple[LoadedPlugins, Settings]:
        from tinklet_core.cli import option_specs  # the command line's own option building

        modules = [plugin for plugin in plugins if isinstance(plugin, str)]
        objects = [
            (f"kit-{index}-{type(plugin).__name__}", plugin)
            for index, plugin in enumerate(plugins)
            if not isinstance(plugin, str)
        ]
        loaded = load_plugins(extra=modules, objects=objects)
        core, plugin_specs, warnings = option_specs(loaded)
        loaded.failures.extend(warnings)
        given = {"runtime": self.runtime, "identifier": identifier, **self.core_options, **(options or {})}
        flags = {name.replace("-", "_"): value for name, value in given.items()}
        environ = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
        settings = load_settings(flags, plugin_specs, environ=environ, core=core)
        register_core_plugins(loaded, settings)
        return loaded, settings

    def _written(self, workflow: Mapping[str, Any]) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / f"workflow-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(dict(workflow)))
        return path


@contextlib.contextmanager
def _captured_log(lines: list[str]) -> Iterator[None]:
    """Keep tinklet's log lines (``LEVEL message``, INFO and up) in ``lines`` while the block runs."""
    handler = _ListHandler(lines)
    logger = logging.getLogger("tinklet")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self._lines.append(f"{record.levelname} {record.getMessage()}")
