"""The entry point of the self-contained tinklet executable (``scripts/build-executable``).

A frozen interpreter ignores ``PYTHONPATH``; ``TINKLET_PLUGIN_PATH`` (directories separated by
``:``) takes its place for third-party plugins: a plugin installed there with ``pip install
--target DIR`` is found by its entry point like a bundled one, and a bare module there can be
named with ``-p MODULE`` / ``TINKLET_PLUGINS``. The same file runs as ``tinklet`` and as
``tink-agent`` (CaptainOS extracts ``/usr/bin/tink-agent``).
"""

from __future__ import annotations

import os
import sys


def plugin_path(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The directories ``TINKLET_PLUGIN_PATH`` names, in order, empty entries dropped."""
    return [part for part in environ.get("TINKLET_PLUGIN_PATH", "").split(os.pathsep) if part]


if __name__ == "__main__":
    sys.path[1:1] = plugin_path(os.environ)  # after the bundle, so a plugin cannot shadow the core
    from tinklet_core.launch import main  # --version answered before the rest is imported

    main()
