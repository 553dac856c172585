"""The ``tinklet`` command: the edge where settings are read, errors become one line, and logs start.

``tinklet [OPTIONS]`` works for a Tink server; ``tinklet run WORKFLOW.yaml`` runs a workflow file
here; ``tinklet plugins list`` and ``tinklet version`` describe the installation. Options are
built from data (the core's :data:`~tinklet_core.config.CORE_OPTIONS` and every runtime plugin's
options), so a plugin's ``--podman-socket`` is a flag, an environment variable and a config key
like the core's own. ``-p no:NAME`` / ``-p MODULE`` are read before the command line is built,
because they decide which plugins (and so which options) exist.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import typer

from tinklet_core import app as application
from tinklet_core.config import (
    CORE_OPTIONS,
    ENV_PREFIX,
    OptionSpec,
    Settings,
    env_flag,
    load_settings,
    runtime_option_specs,
)
from tinklet_core.errors import TinkletError
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import Event, State
from tinklet_core.plugins import LoadedPlugins, describe_plugins, load_plugins, runtime_specs
from tinklet_core.runtime import RuntimeOption
from tinklet_core.workflow import load_workflow

EXIT_WORKFLOW_FAILED = 1
EXIT_USAGE = 2
log = logging.getLogger("tinklet")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # gRPC's C core prints handshake noise otherwise
    try:
        blocked, extra = plugin_switches(args)
        loaded = load_plugins(
            autoload=not env_flag(ENV_PREFIX + "DISABLE_PLUGIN_AUTOLOAD"),
            blocked=blocked,
            extra=[*extra, *_env_plugins()],
        )
        runtime_options = [
            option for _name, spec in runtime_specs(loaded.manager).values() for option in spec.options
        ]
    except TinkletError as exc:
        _fail(str(exc))
    try:
        build_app(loaded, runtime_options)(args=args, prog_name="tinklet")
    except SystemExit:
        raise
    except Exception as exc:  # the last edge: a bug still gets one line, the traceback at debug
        log.debug("unexpected error", exc_info=True)
        _fail(f"unexpected {exc.__class__.__name__}: {exc} (run with --loglevel debug for details)", 70)


def _env_plugins() -> list[str]:
    return [name.strip() for name in os.environ.get(ENV_PREFIX + "PLUGINS", "").split(",") if name.strip()]


def plugin_switches(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Blocked plugin names (``-p no:NAME``) and modules to load (``-p MODULE``) in ``args``."""
    values = []
    for index, arg in enumerate(args):
        if arg in ("-p", "--plugin") and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith("--plugin="):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            values.append(arg[2:])
    blocked = [value[3:] for value in values if value.startswith("no:")]
    extra = [value for value in values if not value.startswith("no:")]
    return blocked, extra


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"tinklet: error: {message}", err=True)
    raise typer.Exit(code)


def _option_parameters(specs: Sequence[OptionSpec]) -> list[inspect.Parameter]:
    parameters = []
    for spec in specs:
        help_text = spec.help
        if spec.choices:
            help_text += f" One of: {', '.join(spec.choices)}."
        if spec.default not in (None, (), False):
            help_text += f" Default: {spec.default}."
        help_text += f" Env: {spec.env}."
        annotation: Any
        metavar = "JSON" if spec.multiple else ("N" if spec.kind in (int, float) else "TEXT")
        if spec.kind is bool:
            annotation = Optional[bool]  # noqa: UP045 - typer needs the Optional form at runtime
            flags = (f"--{spec.name}/--no-{spec.name}",)
        elif spec.multiple:
            annotation = Optional[list[str]]  # noqa: UP045
            flags = (f"--{spec.name}",)
        else:  # numbers are converted by the config loader, which names the flag in its error
            annotation = Optional[str]  # noqa: UP045
            flags = (f"--{spec.name}",)
        parameters.append(
            inspect.Parameter(
                spec.key,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(
                    None,
                    *flags,
                    help=help_text,
                    show_default=False,
                    metavar=None if spec.kind is bool else metavar,
                ),
                annotation=annotation,
            )
        )
    return parameters


def _with_options(
    func: Callable[..., None], fixed: Sequence[inspect.Parameter], specs: Sequence[OptionSpec]
) -> Callable[..., None]:
    """Give ``func(**params)`` a signature typer reads: ``fixed`` parameters, then the options."""
    parameters = [*fixed, *_option_parameters(specs)]
    func.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in parameters}
    return func


def _parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def build_app(loaded: LoadedPlugins, runtime_options: Sequence[RuntimeOption]) -> typer.Typer:
    """The typer application for these plugins."""
    specs = [*CORE_OPTIONS, *runtime_option_specs(runtime_options)]
    common = [spec for spec in specs if spec.scope == "common"]
    cli = typer.Typer(
        add_completion=False,
        no_args_is_help=False,
        pretty_exceptions_enable=False,
        help="A Tinkerbell worker whose container runtimes are plugins.",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    plugins_cli = typer.Typer(help="Inspect installed plugins.", add_completion=False)
    cli.add_typer(plugins_cli, name="plugins")

    def settings_for(root_flags: dict[str, Any] | None, flags: dict[str, Any]) -> Settings:
        """Settings from the root command's flags, overridden by a subcommand's own."""
        merged = dict(root_flags or {})
        merged.update({key: value for key, value in flags.items() if value not in (None, [])})
        settings = load_settings(merged, runtime_options)
        _setup_logging(settings.loglevel)
        for warning in (*loaded.failures, *settings.warnings):
            log.warning(warning)
        application.register_core_plugins(loaded, settings)
        return settings

    def root(ctx: typer.Context, plugin: list[str] | None = None, **flags: Any) -> None:
        ctx.obj = flags
        if ctx.invoked_subcommand is not None:
            return
        try:
            settings = settings_for(ctx.obj, {})
            application.serve(loaded, settings, _stop_on_signals())
            log.info("tinklet stopped")
        except TinkletError as exc:
            _fail(str(exc))

    plugin_option = typer.Option(
        None, "-p", "--plugin", metavar="NAME", help="no:NAME blocks a plugin; MODULE loads one."
    )
    root_fixed = [
        _parameter("ctx", typer.Context),
        _parameter("plugin", Optional[list[str]], plugin_option),  # noqa: UP045
    ]
    cli.callback(invoke_without_command=True)(_with_options(root, root_fixed, specs))

    def run(ctx: typer.Context, workflow: str, **flags: Any) -> None:
        """Run a workflow file here, with no Tink server; exit 1 if it did not succeed."""
        try:
            settings = settings_for(ctx.obj, flags)
            parsed = load_workflow(Path(workflow), agent_id=settings.identifier or application.LOCAL_AGENT)
            summary = RunSummary(len(parsed.actions))
            loaded.manager.register(summary, name="run-summary")
            application.run_workflow(loaded, settings, parsed, _stop_on_signals(), summary.record_final)
        except TinkletError as exc:
            _fail(str(exc))
        typer.echo(summary.closing_line(parsed.workflow_id))
        if not summary.succeeded:
            raise typer.Exit(EXIT_WORKFLOW_FAILED)

    run_fixed = [
        _parameter("ctx", typer.Context),
        _parameter("workflow", str, typer.Argument(..., help="Workflow YAML file (a Tinkerbell template).")),
    ]
    cli.command("run")(_with_options(run, run_fixed, common))

    @plugins_cli.command("list")
    def plugins_list(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List loaded plugins: distribution, version, runtimes and the hooks they implement."""
        try:
            settings_for(ctx.find_root().obj, {})
        except TinkletError as exc:
            _fail(str(exc))
        infos = describe_plugins(loaded)
        if as_json:
            typer.echo(json.dumps([info.__dict__ for info in infos], indent=2))
            return
        rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "RUNTIMES", "HOOKS")]
        rows += [
            (i.name, i.distribution or "-", i.version or "-", ",".join(i.runtimes) or "-", ", ".join(i.hooks))
            for i in infos
        ]
        widths = [max(len(row[col]) for row in rows) for col in range(4)]
        for row in rows:
            typer.echo(
                "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
                + "  "
                + row[4]
            )

    @cli.command("version")
    def version() -> None:
        """Print tinklet's version and the installed runtime plugins'."""
        typer.echo(f"tinklet {_core_version()}")
        for name, (dist, ver) in sorted(loaded.distributions.items()):
            if dist and dist != "tinklet":
                typer.echo(f"{dist} {ver} (plugin {name})")

    return cli


def _core_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("tinklet")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class RunSummary:
    """Prints each action's state as ``tinklet run`` goes, and the closing summary."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finals: list[Event] = []

    @hookimpl
    def tinklet_action_event(self, event: Event) -> None:
        """Print RUNNING as it is reported (final states come through ``record_final``)."""
        if event.state is State.RUNNING:
            typer.echo(f"{'RUNNING':<8} {event.action.task_id}/{event.action.name}")

    def record_final(self, event: Event) -> None:
        """Print and keep a final state."""
        self.finals.append(event)
        duration = event.duration.total_seconds() if event.duration else 0.0
        detail = "" if event.state is State.SUCCESS else f": {event.message}"
        typer.echo(
            f"{event.state.value:<8} {event.action.task_id}/{event.action.name} ({duration:.1f}s){detail}"
        )

    @property
    def succeeded(self) -> bool:
        """True when every action ran and succeeded."""
        return len(self.finals) == self.total and all(e.state is State.SUCCESS for e in self.finals)

    def closing_line(self, workflow_id: str) -> str:
        """``workflow demo: SUCCESS (4 of 4 actions succeeded)`` and the like."""
        succeeded = sum(1 for event in self.finals if event.state is State.SUCCESS)
        not_run = self.total - len(self.finals)
        if self.succeeded:
            return f"workflow {workflow_id}: SUCCESS ({succeeded} of {self.total} actions succeeded)"
        last = self.finals[-1].state.value if self.finals else "STOPPED"
        return f"workflow {workflow_id}: {last} ({succeeded} of {self.total} succeeded, {not_run} not run)"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def _stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT; the runtime stops its action on it."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
