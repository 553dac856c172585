"""The ``tinklet`` console script: answers ``tinklet --version`` before anything else is imported.

``--version`` alone on the line is what scripts and packagers ask first, on every boot of a
machine that checks it; it needs no plugin, typer or settings, so it is printed from the
installed distribution's metadata here. Any other command line goes to :func:`tinklet_core.cli.main`
(which also takes ``--version`` among other options, with the same answer).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        print(version_line())
        return
    from tinklet_core.cli import main as cli_main

    cli_main(args)


def core_version() -> str:
    """tinklet's installed version, or ``unknown`` when run from a tree that is not installed."""
    from tinklet_core.installed import version

    return version("tinklet") or "unknown"


def version_line() -> str:
    """What ``tinklet --version`` prints: ``tinklet VERSION``."""
    return f"tinklet {core_version()}"
