"""tinklet-extras: three small plugins that are not runtimes (a template to copy).

- :mod:`tinklet_extras.spool`: a transport that takes workflow files from a directory;
- :mod:`tinklet_extras.mirror`: a rewrite that sends images of chosen registries to a mirror;
- :mod:`tinklet_extras.audit`: an observer that writes one JSON line per finished action.

Each module is its own entry point (see ``pyproject.toml``), so each can be blocked on its own
with ``-p no:NAME``.
"""
