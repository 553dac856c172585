"""``-p no:NAME`` / ``-p MODULE`` (and ``TINKLET_PLUGINS``): read before the command line is
built, because they decide which plugins, and so which options, exist."""

from __future__ import annotations

import os
from collections.abc import Sequence

from tinklet_core.cli.usage import UsageError
from tinklet_core.config import ENV_PREFIX


def env_plugins() -> list[str]:
    return [name.strip() for name in os.environ.get(ENV_PREFIX + "PLUGINS", "").split(",") if name.strip()]



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
