"""The ``tinklet`` command: the edge where settings are read, errors become one line, and logs start.

``tinklet [OPTIONS]`` works for a Tink server; ``tinklet run WORKFLOW.yaml`` runs a workflow file
here; ``tinklet plugins list`` and ``tinklet version`` describe the installation. ``tinklet
RUNTIME [OPTIONS]`` (``tinklet docker``, ``tinklet kube``) is the Go tinklet's spelling of
``--runtime RUNTIME``, and its single-dash long flags (``-tink``, ``-identifier``, ``-id``…) are
accepted. Options are built from data (the core's :data:`~tinklet_core.config.CORE_OPTIONS` and
every plugin's), so a plugin's ``--podman-socket`` is a flag, an environment variable and a config
key like the core's own, shown in ``--help`` under its plugin. ``-p no:NAME`` / ``-p MODULE`` are
read (anywhere on the line) before the command line is built, because they decide which plugins,
and so which options, exist.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NoReturn, Optional

from tinklet_core import agent_attributes
from tinklet_core import app as application
from tinklet_core.agent_compat import (
    RUNTIME_PLUGIN_FLAGS,
    AgentFlagError,
    agent_command_line,
    unclaimed_runtime_variables,
)
from tinklet_core.config import (
    CORE_OPTIONS,
    ENV_PREFIX,
    OptionSpec,
    Settings,
    env_flag,
    load_settings,
    plugin_option_specs,
)
from tinklet_core.errors import TinkletError
from tinklet_core.launch import version_line
from tinklet_core.log_format import configure_logging
from tinklet_core.model import Event, State
from tinklet_core.plugins import (
    LoadedPlugins,
    describe_plugins,
    load_plugins,
    register_builtin,
    server_transport_names,
)
from tinklet_core.progress import LiveProgress, state_line, workflow_name

if TYPE_CHECKING:  # imported by build_app: a bare 'tinklet plugins list' runs without typer
    import typer

EXIT_WORKFLOW_FAILED = 1
EXIT_USAGE = 2
COMMANDS = ("run", "plugins", "version")
log = logging.getLogger("tinklet")


class UsageError(Exception):
    """Bad command-line input found before typer runs; ``str()`` is the one line to print."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # gRPC's C core prints handshake noise otherwise
    try:
        args = agent_command_line(args)
        args = long_single_dash(args, _long_names(CORE_OPTIONS))
        args, blocked, extra = plugin_switches(args)
        loaded = load_plugins(
            autoload=not env_flag(ENV_PREFIX + "DISABLE_PLUGIN_AUTOLOAD"),
            blocked=blocked,
            extra=[*extra, *_env_plugins()],
        )
        core, plugin_specs, warnings = option_specs(loaded)
        loaded.failures.extend(warnings)
        declared = {name for spec in plugin_specs for name in (spec.name, *spec.aliases)}
        loaded.failures.extend(unclaimed_runtime_variables(os.environ, declared))
        args = long_single_dash(args, _long_names([*core, *plugin_specs]))
        refuse_unclaimed_runtime_flags(args)
    except (TinkletError, UsageError, AgentFlagError) as exc:
        _fail(str(exc))
    try:
        if args in (["plugins", "list"], ["plugins", "list", "--json"]):  # what scripts ask: no parser
            try:
                prepared_settings(loaded, core, plugin_specs, None, {})
            except TinkletError as exc:
                _fail(str(exc))
            show_plugins(loaded, plugin_specs, as_json=args[-1] == "--json")
            return
        app = build_app(loaded, core, plugin_specs)  # imports typer
        command = typer.main.get_command(app)
        values_as_parsed(command, {spec.key for spec in [*core, *plugin_specs]} | {"plugin"})
        command.main(args=args, prog_name="tinklet")
    except SystemExit:
        raise
    except Exception as exc:  # the last edge: a bug still gets one line, the traceback at debug
        log.debug("unexpected error", exc_info=True)
        _fail(f"unexpected {exc.__class__.__name__}: {exc} (run with --loglevel debug for details)", 70)


def values_as_parsed(command: Any, keys: set[str], help_names: Sequence[str] = ()) -> None:
    """Hand the values of the options named by ``keys`` (the spec-built ones: strings, string
    lists and on/off flags, converted and checked by :func:`~tinklet_core.config.load_settings`)
    and of every on/off flag (``--help``, made here with the names the command's contexts give
    it, and ``--json``) to the command as the parser read them, without typer's own coercion.

    typer builds a pydantic ``TypeAdapter`` for every option it processes, given or not; with
    ~100 options that import and those adapters were the largest part of every start (pydantic
    alone ~40-60 ms). A typer without that per-parameter hook (``_runtime_param``) is left as
    it is: slower, same result."""
    help_names = (getattr(command, "context_settings", None) or {}).get("help_option_names", help_names)
    params = [*getattr(command, "params", ())]
    if help_names and hasattr(command, "get_help_option"):  # made on first use, with these names
        params.append(command.get_help_option(SimpleNamespace(help_option_names=help_names)))
    for sub in getattr(command, "commands", {}).values():
        values_as_parsed(sub, keys, help_names)
    for param in params:
        if (param.name in keys or getattr(param, "is_flag", False)) and hasattr(param, "_runtime_param"):
            param._runtime_param = _AS_PARSED


class _AsParsed:
    """typer's coercion step for a spec-built option: ``None`` (not given) as typer gives it,
    several values as a list, anything else as parsed."""

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """The value as the command's callback expects it."""
        several = param.multiple or param.nargs == -1
        if value is None:
            return () if several else None
        return list(value) if several else value


_AS_PARSED = _AsParsed()


def _env_plugins() -> list[str]:
    return [name.strip() for name in os.environ.get(ENV_PREFIX + "PLUGINS", "").split(",") if name.strip()]


def _long_names(specs: Sequence[OptionSpec]) -> dict[str, bool]:
    """Every long option name (and alias), with whether it takes a value."""
    names = {"plugin": True, "help": False}
    for spec in specs:
        for name in (spec.name, *spec.aliases):
            names[name] = spec.kind is not bool
            if spec.kind is bool:
                names[f"no-{name}"] = False
    return names


def long_single_dash(args: Sequence[str], names: dict[str, bool]) -> list[str]:
    """``-tink H:P`` becomes ``--tink H:P`` (the Go tinklet's flags) for every known long option
    name, and a Go boolean ``-tls=false`` becomes ``--no-tls``; option values and everything
    after ``--`` are left alone."""
    result: list[str] = []
    takes_value = False
    for index, arg in enumerate(args):
        if arg == "--":
            return [*result, *args[index:]]
        if takes_value:
            result.append(arg)
            takes_value = False
            continue
        if arg.startswith("-") and not arg.startswith("--") and arg[1:].partition("=")[0] in names:
            arg = "-" + arg
        name, equals, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if equals and names.get(name) is False and value.lower() in _GO_BOOLS:
            arg = f"--{name}" if _GO_BOOLS[value.lower()] else f"--no-{name}"  # Go's -tls=true
        elif arg.startswith("--") and not equals:
            takes_value = names.get(name, False)
        result.append(arg)
    return result


_GO_BOOLS = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}


def refuse_unclaimed_runtime_flags(args: Sequence[str]) -> None:
    """A tink agent runtime flag (``-containerd-socket``) that no installed runtime plugin
    declared is a one-line :class:`UsageError` (a plugin that declares it has turned it into
    ``--containerd-socket`` by now)."""
    for arg in args:
        if arg == "--":
            return
        name = arg.lstrip("-").partition("=")[0]
        if arg.startswith("-") and not arg.startswith("--") and name in RUNTIME_PLUGIN_FLAGS:
            raise UsageError(
                f"-{name}: no installed runtime plugin has a --{name} option "
                "(install the containerd runtime plugin, see 'tinklet plugins list')"
            )


def plugin_switches(args: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Take ``-p``/``--plugin`` out of ``args`` wherever they are: returns the other arguments,
    the blocked plugin names (``-p no:NAME``) and the modules to load (``-p MODULE``)."""
    rest: list[str] = []
    values: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg in ("-p", "--plugin"):
            if index + 1 >= len(args) or not args[index + 1]:
                raise UsageError(f"{arg} needs a value: no:NAME blocks a plugin, MODULE loads one")
            values.append(args[index + 1])
            index += 2
            continue
        if arg.startswith(("--plugin=", "-p=")):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith("-pno:"):
            values.append(arg[2:])
        else:
            rest.append(arg)
        index += 1
    blocked = [value[3:] for value in values if value.startswith("no:")]
    if any(not name for name in blocked):
        raise UsageError("-p no: needs a plugin name (see 'tinklet plugins list')")
    extra = [value for value in values if not value.startswith("no:")]
    return rest, blocked, extra


def option_specs(loaded: LoadedPlugins) -> tuple[list[OptionSpec], list[OptionSpec], list[str]]:
    """The core's options (``--protocol`` narrowed to the installed transports) and every
    plugin's, each owned and headed by its plugin, with warnings about refused names."""
    protocols = tuple(server_transport_names(loaded))
    default = (
        "auto" if "auto" in protocols else ("v2" if "v2" in protocols or not protocols else protocols[0])
    )
    core = [
        dataclasses.replace(spec, choices=protocols, default=default) if spec.name == "protocol" else spec
        for spec in CORE_OPTIONS
    ]
    groups: list[tuple[str, str, Sequence[Any], str]] = []
    seen: list[object] = []
    for provided in loaded.runtimes.values():
        if provided.spec in seen:
            continue
        seen.append(provided.spec)
        heading = f"Runtime {provided.spec.name} ({_origin(loaded, provided.plugin)})"
        groups.append((f"runtime:{provided.spec.name}", heading, provided.spec.options, "common"))
    for transport in loaded.transports.values():
        if transport.spec in seen:
            continue
        seen.append(transport.spec)
        heading = f"Transport {transport.spec.name} ({_origin(loaded, transport.plugin)})"
        groups.append((f"transport:{transport.spec.name}", heading, transport.spec.options, "worker"))
    for plugin, options in loaded.options.items():
        groups.append((plugin, f"Plugin {_origin(loaded, plugin)}", options, "common"))
    specs, warnings = plugin_option_specs(groups)
    return core, specs, warnings


def _origin(loaded: LoadedPlugins, plugin: str) -> str:
    dist, _version = loaded.distributions.get(plugin, ("", ""))
    return dist if dist and dist != plugin else plugin


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"tinklet: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def _option_parameters(specs: Sequence[OptionSpec]) -> list[inspect.Parameter]:
    import typer

    parameters = []
    for spec in specs:
        help_text = _sentence(spec.help)
        if spec.choices:
            help_text += f" One of: {', '.join(spec.choices)}."
        if spec.default not in (None, (), [], "", False):
            help_text += f" Default: {spec.default}."
        help_text += f" Env: {', '.join(spec.env_names)}."
        annotation: Any
        metavar = (
            "JSON" if spec.multiple and not spec.separator else ("N" if spec.kind in (int, float) else "TEXT")
        )
        names = (spec.name, *spec.aliases)
        if spec.kind is bool:
            annotation = Optional[bool]  # noqa: UP045 - typer needs the Optional form at runtime
            flags = tuple(f"--{name}/--no-{name}" for name in names)
        elif spec.multiple:
            annotation = Optional[list[str]]  # noqa: UP045
            flags = tuple(f"--{name}" for name in names)
        else:  # numbers are converted by the config loader, which names the flag in its error;
            # every value is kept, so that one given twice is a warning (config.load_settings)
            annotation = Optional[list[str]]  # noqa: UP045
            flags = tuple(f"--{name}" for name in names)
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
                    rich_help_panel=spec.heading,
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


def build_app(
    loaded: LoadedPlugins, core: Sequence[OptionSpec], plugin_specs: Sequence[OptionSpec]
) -> typer.Typer:
    """The typer application for these plugins."""
    global typer  # the commands' annotations name typer, and typer resolves them in globals()
    import typer

    specs = [*core, *plugin_specs]
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
        return prepared_settings(loaded, core, plugin_specs, root_flags, flags)

    def serve(settings: Settings) -> None:
        application.serve(loaded, settings, _stop_on_signals())
        log.info("tinklet stopped")

    def root(
        ctx: typer.Context, plugin: list[str] | None = None, version: bool = False, **flags: Any
    ) -> None:
        ctx.obj = flags
        if ctx.invoked_subcommand is not None:
            return
        try:
            serve(settings_for(ctx.obj, {}))
        except TinkletError as exc:
            _fail(str(exc))

    plugin_option = typer.Option(
        None,
        "-p",
        "--plugin",
        metavar="NAME",
        help="Block a plugin with no:NAME, or load a plugin module by its name; works anywhere on the line.",
    )
    version_option = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print tinklet's version and exit ('tinklet version' adds the plugins').",
    )
    root_fixed = [
        _parameter("ctx", typer.Context),
        _parameter("plugin", Optional[list[str]], plugin_option),  # noqa: UP045
        _parameter("version", bool, version_option),
    ]
    cli.callback(invoke_without_command=True)(_with_options(root, root_fixed, specs))

    def run(ctx: typer.Context, workflow: str, **flags: Any) -> None:
        """Run a workflow file here, with no Tink server; exit 1 if it did not succeed."""
        from tinklet_core.workflow import load_workflow  # PyYAML: only tinklet run reads YAML

        try:
            settings = settings_for(ctx.obj, flags)
            parsed = load_workflow(Path(workflow), agent_id=settings.identifier or application.LOCAL_AGENT)
            live = LiveProgress(sys.stdout) if sys.stdout.isatty() else None  # plain lines otherwise
            summary = RunSummary(len(parsed.actions), echo=live is None)
            shown = live is not None and register_builtin(loaded, live, "core-progress")
            if live is not None and not shown:  # -p no:core-progress: plain lines instead
                summary.echo = True
            try:
                application.run_workflow(loaded, settings, workflow, _stop_on_signals(), summary.record)
            finally:
                if shown:
                    loaded.manager.unregister(live)
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

    for runtime_name, provided in sorted(loaded.runtimes.items()):
        if runtime_name in COMMANDS:
            continue
        cli.command(
            runtime_name,
            hidden=runtime_name != provided.spec.name,
            help=f"Work for a Tink server on the {runtime_name} runtime (as --runtime {runtime_name}).",
        )(
            _with_options(
                _runtime_command(runtime_name, settings_for, serve), [_parameter("ctx", typer.Context)], specs
            )
        )

    @plugins_cli.command("list")
    def plugins_list(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List plugins: distribution, version, runtimes, transports, options and hooks, and
        the plugins that failed to load."""
        try:
            settings_for(ctx.find_root().obj, {})
        except TinkletError as exc:
            _fail(str(exc))
        show_plugins(loaded, plugin_specs, as_json)

    @cli.command("agent-attributes")
    def show_agent_attributes() -> None:
        """Print, as JSON, the hardware facts a v2 GetAction would carry (see --no-agent-attributes)."""
        typer.echo(json.dumps(agent_attributes.gather(), indent=2))

    @cli.command("version")
    def version() -> None:
        """Print tinklet's version and the installed runtime plugins'."""
        typer.echo(version_line())
        for name, (dist, ver) in sorted(loaded.distributions.items()):
            if dist and dist != "tinklet":
                typer.echo(f"{dist} {ver} (plugin {name})")

    return cli


def prepared_settings(
    loaded: LoadedPlugins,
    core: Sequence[OptionSpec],
    plugin_specs: Sequence[OptionSpec],
    root_flags: dict[str, Any] | None,
    flags: dict[str, Any],
) -> Settings:
    """Settings from the root command's flags, overridden by a subcommand's own; logging is
    configured, load and settings warnings are logged and the core's plugins registered."""
    merged = dict(root_flags or {})
    merged.update({key: value for key, value in flags.items() if value not in (None, [])})
    settings = load_settings(merged, plugin_specs, core=core)
    configure_logging(settings.loglevel, settings.log_format)
    for warning in (*loaded.failures, *settings.warnings):
        log.warning(warning)
    application.register_core_plugins(loaded, settings)
    return settings


def show_plugins(loaded: LoadedPlugins, accepted: Sequence[OptionSpec], as_json: bool) -> None:
    """Print what ``tinklet plugins list [--json]`` prints (``accepted``: the plugin options
    that were not refused as clashes)."""
    report = plugins_report(loaded, accepted) if as_json else None
    text = json.dumps(report, indent=2) if as_json else "\n".join(plugins_table(loaded, accepted))
    sys.stdout.write(text + "\n")  # one write, as typer's echo did
    sys.stdout.flush()


def _print_version(value: bool) -> None:
    import typer

    if value:
        typer.echo(version_line())
        raise typer.Exit()


def _runtime_command(
    name: str,
    settings_for: Callable[[dict[str, Any] | None, dict[str, Any]], Settings],
    serve: Callable[[Settings], None],
) -> Callable[..., None]:
    def command(ctx: typer.Context, **flags: Any) -> None:
        try:
            serve(settings_for(ctx.find_root().obj, {**flags, "runtime": name}))
        except TinkletError as exc:
            _fail(str(exc))

    return command


def plugins_report(loaded: LoadedPlugins, accepted: Sequence[OptionSpec] | None = None) -> dict[str, Any]:
    """What ``tinklet plugins list --json`` prints: plugins, runtimes, transports, failures
    (with ``accepted``, the plugin options that became flags, a refused one is not listed)."""
    taken = None if accepted is None else {(spec.owner, spec.name) for spec in accepted}

    def specs(found: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        unique: dict[str, dict[str, Any]] = {}
        for provided in found.values():
            spec = provided.spec
            unique.setdefault(
                spec.name,
                {
                    "name": spec.name,
                    "aliases": list(spec.aliases),
                    "summary": spec.summary,
                    "plugin": provided.plugin,
                    "options": [
                        f"--{option.name}"
                        for option in spec.options
                        if taken is None or (f"{kind}:{spec.name}", option.name) in taken
                    ],
                },
            )
        return sorted(unique.values(), key=lambda entry: entry["name"])

    return {
        "plugins": [dataclasses.asdict(info) for info in describe_plugins(loaded, taken)],
        "runtimes": specs(loaded.runtimes, "runtime"),
        "transports": specs(loaded.transports, "transport"),
        "failures": list(loaded.failures),
    }


def plugins_table(loaded: LoadedPlugins, accepted: Sequence[OptionSpec] | None = None) -> list[str]:
    """The text form of ``tinklet plugins list``."""
    report = plugins_report(loaded, accepted)
    lines = []
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "PROVIDES", "HOOKS")]
    for info in report["plugins"]:
        provides = [f"runtime {name}" for name in info["runtimes"]]
        provides += [f"transport {name}" for name in info["transports"]]
        rows.append(
            (info["name"], info["distribution"] or "-", info["version"] or "-",
             ", ".join(provides) or "-", ", ".join(info["hooks"]))
        )  # fmt: skip
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
    for kind in ("runtimes", "transports"):
        lines.append("")
        lines.append(f"{kind.upper()}")
        for entry in report[kind]:
            aliases = f" (alias {', '.join(entry['aliases'])})" if entry["aliases"] else ""
            summary = f": {entry['summary']}" if entry["summary"] else ""
            lines.append(f"  {entry['name']}{aliases}{summary}  [plugin {entry['plugin']}]")
    if report["failures"]:
        lines.append("")
        lines.append("FAILURES")
        lines.extend(f"  {failure}" for failure in report["failures"])
    return lines


class RunSummary:
    """Keeps the final states for the closing summary and, with ``echo``, prints each state as a
    plain line as ``tinklet run`` goes (on a terminal :class:`LiveProgress` draws them instead)."""

    def __init__(self, total: int, echo: bool = True) -> None:
        self.total = total
        self.echo = echo
        self.finals: list[Event] = []

    def record(self, event: Event) -> None:
        """Keep a final event; print the event's line when echoing."""
        if event.state.is_final:
            self.finals.append(event)
        if self.echo:
            print(state_line(event), flush=True)

    @property
    def succeeded(self) -> bool:
        """True when every action ran and succeeded."""
        return len(self.finals) == self.total and all(e.state is State.SUCCESS for e in self.finals)

    def closing_line(self, workflow_id: str) -> str:
        """``workflow demo: SUCCESS (4 of 4 actions succeeded)`` and the like."""
        workflow_id = workflow_name(workflow_id)  # escaped and shortened: it comes from the file
        succeeded = sum(1 for event in self.finals if event.state is State.SUCCESS)
        not_run = self.total - len(self.finals)
        if self.succeeded:
            return f"workflow {workflow_id}: SUCCESS ({succeeded} of {self.total} actions succeeded)"
        last = self.finals[-1].state.value if self.finals else "STOPPED"
        return f"workflow {workflow_id}: {last} ({succeeded} of {self.total} succeeded, {not_run} not run)"


def _stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT; the runtime stops its action on it."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
