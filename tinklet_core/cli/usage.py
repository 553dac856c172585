"""How the command line fails: exit codes and the one ``tinklet: error:`` line."""

from __future__ import annotations

import sys
from typing import NoReturn

EXIT_WORKFLOW_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input found before typer runs; ``str()`` is the one line to print."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``tinklet: error: MESSAGE`` on stderr and exit with ``code``."""
    print(f"tinklet: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)
