"""The typer application for the loaded plugins: the worker (root), ``run``, the Go
compatibility commands (``tinklet docker``…), ``plugins list``, ``agent-attributes`` and
``version``; and the settings every command reads."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from tinklet_core import agent_attributes
from tinklet_core.cli.reports import show_plugins
from tinklet_core.cli.run_summary import RunSummary, stop_on_signals
from tinklet_core.cli.signature import parameter, with_options
from tinklet_core.cli.specs import in_panel_order
from tinklet_core.cli.usage import EXIT_WORKFLOW_FAILED, fail
from tinklet_core.config import OptionSpec, Settings, load_settings
from tinklet_core.core_plugins import register_core_plugins
from tinklet_core.errors import TinkletError
from tinklet_core.launch import version_line
from tinklet_core.log_format import configure_logging
from tinklet_core.plugins import LoadedPlugins, register_builtin
from tinklet_core.progress import LiveProgress

if TYPE_CHECKING:  # imported by build_app: a bare 'tinklet plugins list' runs without typer
    import typer

COMMANDS = ("run", "plugins", "version")
GO_COMMANDS_PANEL = "Go tinklet compatibility (same as --runtime NAME)"
log = logging.getLogger("tinklet")


def build_app(
    loaded: LoadedPlugins, core: Sequence[OptionSpec], plugin_specs: Sequence[OptionSpec]
) -> typer.Typer:
    """The typer application for these plugins."""
    global typer  # the commands' annotations name typer, and typer resolves them in globals()
    import typer

    from tinklet_core.cli.help_format import HelpfulCommand, HelpfulGroup

    specs = [*in_panel_order(core), *plugin_specs]
    common = [spec for spec in specs if spec.scope == "common"]
    cli = typer.Typer(
        add_completion=False,
        no_args_is_help=False,
        pretty_exceptions_enable=False,
        help="A Tinkerbell worker whose container runtimes are plugins.",
        cls=HelpfulGroup,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    plugins_cli = typer.Typer(help="Inspect installed plugins.", add_completion=False, cls=HelpfulGroup)
    cli.add_typer(plugins_cli, name="plugins")

    def settings_for(root_flags: dict[str, Any] | None, flags: dict[str, Any]) -> Settings:
        """Settings from the root command's flags, overridden by a subcommand's own."""
        return prepared_settings(loaded, core, plugin_specs, root_flags, flags)

    def serve(settings: Settings) -> None:
        serve_worker(loaded, settings)

    def root(
        ctx: typer.Context, plugin: list[str] | None = None, version: bool = False, **flags: Any
    ) -> None:
        ctx.obj = flags
        if ctx.invoked_subcommand is not None:
            return
        try:
            serve(settings_for(ctx.obj, {}))
        except TinkletError as exc:
            fail(str(exc))

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
        parameter("ctx", typer.Context),
        parameter("plugin", Optional[list[str]], plugin_option),  # noqa: UP045
        parameter("version", bool, version_option),
    ]
    cli.callback(invoke_without_command=True)(with_options(root, root_fixed, specs))

    def run(ctx: typer.Context, workflow: str, **flags: Any) -> None:
        """Run a workflow file here, with no Tink server; exit 1 if it did not succeed."""
        from tinklet_core import app as application
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
                application.run_workflow(loaded, settings, workflow, stop_on_signals(), summary.record)
            finally:
                if shown:
                    loaded.manager.unregister(live)
        except TinkletError as exc:
            fail(str(exc))
        typer.echo(summary.closing_line(parsed.workflow_id))
        if not summary.succeeded:
            raise typer.Exit(EXIT_WORKFLOW_FAILED)

    run_fixed = [
        parameter("ctx", typer.Context),
        parameter("workflow", str, typer.Argument(..., help="Workflow YAML file (a Tinkerbell template).")),
    ]
    cli.command("run", cls=HelpfulCommand)(with_options(run, run_fixed, common))

    runtime_specs = [spec for spec in specs if spec.name != "runtime"]  # the command names it
    for runtime_name, provided in sorted(loaded.runtimes.items()):
        if runtime_name in COMMANDS:
            continue
        cli.command(
            runtime_name,
            hidden=runtime_name != provided.spec.name,
            help=f"Work for a Tink server on the {runtime_name} runtime (as --runtime {runtime_name}).",
            cls=HelpfulCommand,
            rich_help_panel=GO_COMMANDS_PANEL,
        )(
            with_options(
                _runtime_command(runtime_name, settings_for, serve),
                [parameter("ctx", typer.Context)],
                runtime_specs,
            )
        )

    @plugins_cli.command("list", cls=HelpfulCommand)
    def plugins_list(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List plugins: distribution, version, runtimes, transports, options and hooks, and
        the plugins that failed to load."""
        try:
            settings_for(ctx.find_root().obj, {})
        except TinkletError as exc:
            fail(str(exc))
        show_plugins(loaded, plugin_specs, as_json)

    @cli.command("agent-attributes", cls=HelpfulCommand)
    def show_agent_attributes() -> None:
        """Print, as JSON, the hardware facts a v2 GetAction would carry (see --no-agent-attributes)."""
        typer.echo(json.dumps(agent_attributes.gather(), indent=2))

    @cli.command("version", cls=HelpfulCommand)
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
    register_core_plugins(loaded, settings)
    return settings


def serve_worker(loaded: LoadedPlugins, settings: Settings) -> None:
    """Work for the Tink server until SIGTERM or SIGINT (the root command, or no command line)."""
    from tinklet_core import app as application  # the worker's modules: not for --help or plugins list

    application.serve(loaded, settings, stop_on_signals())
    log.info("tinklet stopped")


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
            fail(str(exc))

    return command
