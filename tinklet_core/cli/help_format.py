"""``--help`` that fits a terminal: options and commands in titled panels (each option's
``rich_help_panel``, each command's), every flag and variable name whole at any width.

typer's own rich layout puts names, negative names, type and help in side-by-side columns; with
plugin option names of 27 characters and variables of 33 the help column of an 80-column
terminal is narrower than a variable name, and the table cuts it (``TINKLET_TLS_SERVER_N…``).
Here the names come first and the help wraps in the space left, or on the lines below when the
names are long: words are wrapped, never cut.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from typer.core import TyperCommand, TyperGroup

NAMES_WIDTH = 30  # names longer than this put their help on the lines below
MIN_HELP_WIDTH = 36  # the longest variable name (33) fits whole beside the names
DEFAULT_PANEL = "Options"
COMMANDS_PANEL = "Commands"


def terminal_width() -> int:
    """The width to lay help out in (``COLUMNS`` first, as click and rich read it), 40 at least."""
    return max(40, min(shutil.get_terminal_size((80, 24)).columns, 120))


def panel(title: str, rows: Sequence[str], width: int) -> list[str]:
    """``rows`` in a box titled ``title``, ``width`` columns wide in all."""
    inner = width - 4
    top = f"╭─ {title} " + "─" * max(0, width - len(title) - 5) + "╮"
    body = [f"│ {row.ljust(inner)} │" for row in rows]
    return [top, *body, "╰" + "─" * (width - 2) + "╯"]


def entry(names: str, text: str, inner: int) -> list[str]:
    """One option or command: ``names`` then ``text`` wrapped beside them (or below, indented)."""
    column = NAMES_WIDTH if inner - NAMES_WIDTH - 1 >= MIN_HELP_WIDTH else 4  # narrow: help below
    help_width = inner - column - 1
    lines = textwrap.wrap(text, help_width, break_on_hyphens=False) or [""]
    if len(names) < column:
        first, rest = f"{names.ljust(column)} {lines[0]}", lines[1:]
    else:
        first, rest = names, lines
        if len(names) > inner:  # a name wider than the box is wrapped whole-word too
            wrapped = textwrap.wrap(names, inner, break_on_hyphens=False)
            first, rest = wrapped[0], [*wrapped[1:], *rest] if len(wrapped) > 1 else rest
    return [first.rstrip(), *(" " * (column + 1) + line for line in rest)]


def option_names(param: Any) -> str:
    """``--tls / --no-tls``, ``--identifier, --id TEXT``, ``-p, --plugin NAME``."""
    shown = ", ".join([*param.opts])
    if getattr(param, "secondary_opts", None):
        shown += " / " + ", ".join(param.secondary_opts)
    if not getattr(param, "is_flag", False) and getattr(param, "metavar", None):
        shown += f" {param.metavar}"
    return shown


def grouped(items: Iterable[tuple[str | None, list[str]]], default: str) -> dict[str, list[str]]:
    """Entries by panel title, in the order the panels first appear."""
    panels: dict[str, list[str]] = {}
    for title, lines in items:
        panels.setdefault(title or default, []).extend(lines)
    return panels


def render_help(command: Any, ctx: Any, width: int | None = None) -> str:
    """The help page of a click/typer ``command`` (options, arguments and subcommands)."""
    width = width or terminal_width()
    inner = width - 4
    out = ["", " " + command.get_usage(ctx).strip(), ""]
    if command.help:
        out.extend(" " + line for line in textwrap.wrap(" ".join(command.help.split()), width - 2))
        out.append("")
    arguments = [param for param in command.get_params(ctx) if param.param_type_name == "argument"]
    if arguments:
        rows = [
            line for param in arguments for line in entry((param.name or "").upper(), param.help or "", inner)
        ]
        out.extend(panel("Arguments", rows, width))
    options = [
        param
        for param in command.get_params(ctx)
        if param.param_type_name == "option" and not getattr(param, "hidden", False)
    ]
    panels = grouped(
        ((getattr(param, "rich_help_panel", None), entry(option_names(param), param.help or "", inner))
         for param in options),
        DEFAULT_PANEL,
    )  # fmt: skip
    for title, rows in panels.items():
        out.extend(panel(title, rows, width))
    commands = [
        (name, sub)
        for name in getattr(command, "list_commands", lambda _ctx: [])(ctx)
        if (sub := command.get_command(ctx, name)) is not None and not sub.hidden
    ]
    if commands:
        listed = grouped(
            ((getattr(sub, "rich_help_panel", None), entry(name, sub.get_short_help_str(limit=10_000), inner))
             for name, sub in commands),
            COMMANDS_PANEL,
        )  # fmt: skip
        for title, rows in listed.items():
            out.extend(panel(title, rows, width))
    return "\n".join(out) + "\n"


class HelpfulCommand(TyperCommand):
    """A typer command whose ``--help`` is :func:`render_help`'s."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Write the help page into click's formatter."""
        formatter.write(render_help(self, ctx))


class HelpfulGroup(TyperGroup):
    """A typer group whose ``--help`` is :func:`render_help`'s."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Write the help page into click's formatter."""
        formatter.write(render_help(self, ctx))
