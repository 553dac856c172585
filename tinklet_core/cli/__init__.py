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

One module per job: :mod:`.go_flags` (Go flag spelling), :mod:`.switches` (``-p``),
:mod:`.specs` (the options and their panels), :mod:`.signature` (typer signatures from specs),
:mod:`.help_format` (``--help`` that fits), :mod:`.app` (the commands), :mod:`.reports`
(``plugins list``), :mod:`.run_summary` (``tinklet run``'s summary and signals). The names
below are re-exported so ``tinklet_core.cli:main`` and older imports keep working.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from tinklet_core.agent_compat import AgentFlagError, agent_command_line, unclaimed_runtime_variables
from tinklet_core.cli.app import build_app, prepared_settings, serve_worker
from tinklet_core.cli.go_flags import long_names, long_single_dash, refuse_unclaimed_runtime_flags
from tinklet_core.cli.reports import plugins_report, plugins_table, show_plugins
from tinklet_core.cli.run_summary import RunSummary
from tinklet_core.cli.specs import CORE_PANELS, option_specs
from tinklet_core.cli.switches import env_plugins, plugin_switches
from tinklet_core.cli.usage import EXIT_USAGE, EXIT_WORKFLOW_FAILED, UsageError, fail
from tinklet_core.config import CORE_OPTIONS, ENV_PREFIX, env_flag
from tinklet_core.errors import TinkletError
from tinklet_core.plugins import load_plugins

__all__ = [
    "CORE_PANELS",
    "EXIT_USAGE",
    "EXIT_WORKFLOW_FAILED",
    "RunSummary",
    "UsageError",
    "build_app",
    "long_single_dash",
    "main",
    "option_specs",
    "plugin_switches",
    "plugins_report",
    "plugins_table",
    "prepared_settings",
    "refuse_unclaimed_runtime_flags",
    "show_plugins",
]
log = logging.getLogger("tinklet")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # gRPC's C core prints handshake noise otherwise
    try:
        args = agent_command_line(args)
        args = long_single_dash(args, long_names(CORE_OPTIONS))
        args, blocked, extra = plugin_switches(args)
        loaded = load_plugins(
            autoload=not env_flag(ENV_PREFIX + "DISABLE_PLUGIN_AUTOLOAD"),
            blocked=blocked,
            extra=[*extra, *env_plugins()],
        )
        core, plugin_specs, warnings = option_specs(loaded)
        loaded.failures.extend(warnings)
        declared = {name for spec in plugin_specs for name in (spec.name, *spec.aliases)}
        loaded.failures.extend(unclaimed_runtime_variables(os.environ, declared))
        args = long_single_dash(args, long_names([*core, *plugin_specs]))
        refuse_unclaimed_runtime_flags(args)
    except (TinkletError, UsageError, AgentFlagError) as exc:
        fail(str(exc))
    try:
        if args in (["plugins", "list"], ["plugins", "list", "--json"]):  # what scripts ask: no parser
            try:
                prepared_settings(loaded, core, plugin_specs, None, {})
            except TinkletError as exc:
                fail(str(exc))
            show_plugins(loaded, plugin_specs, as_json=args[-1] == "--json")
            return
        if not args:  # HookOS runs the image's ENTRYPOINT bare: settings from the environment, no parser
            try:
                serve_worker(loaded, prepared_settings(loaded, core, plugin_specs, None, {}))
            except TinkletError as exc:
                fail(str(exc))
            return
        import typer  # only a command line that is parsed pays for typer

        from tinklet_core.cli.signature import values_as_parsed

        app = build_app(loaded, core, plugin_specs)
        command = typer.main.get_command(app)
        values_as_parsed(command, {spec.key for spec in [*core, *plugin_specs]} | {"plugin"})
        command.main(args=args, prog_name="tinklet")
    except SystemExit:
        raise
    except Exception as exc:  # the last edge: a bug still gets one line, the traceback at debug
        log.debug("unexpected error", exc_info=True)
        fail(f"unexpected {exc.__class__.__name__}: {exc} (run with --loglevel debug for details)", 70)

