"""The Go tinklet's and tink agent's spelling of flags: single-dash long names, ``-tls=false``,
and the tink agent's runtime flags no installed plugin declares."""

from __future__ import annotations

from collections.abc import Sequence

from tinklet_core.agent_compat import RUNTIME_PLUGIN_FLAGS
from tinklet_core.cli.usage import UsageError
from tinklet_core.config import OptionSpec


def long_names(specs: Sequence[OptionSpec]) -> dict[str, bool]:
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

