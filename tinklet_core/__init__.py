"""tinklet: a Tinkerbell worker whose container runtimes are plugins."""

from tinklet_core.hookspecs import hookimpl

__all__ = ["hookimpl"]
