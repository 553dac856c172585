"""The container layer every OCI-style engine plugin shares (Docker, Podman, a third party's).

- :mod:`~tinklet_core.containers.spec`: one container spec built from an Action (mounts, env,
  namespaces, privilege honest about the host's capability bounding set, labels, name).
- :mod:`~tinklet_core.containers.engine`: the engine protocol an adapter implements, and the
  one error it raises.
- :mod:`~tinklet_core.containers.runtime`: action execution, written once.
- :mod:`~tinklet_core.containers.output` and :mod:`~tinklet_core.containers.frames`: engine
  output to batches of lines, per stream, in order, with bounded memory.

Nothing here imports an engine's client library.
"""
