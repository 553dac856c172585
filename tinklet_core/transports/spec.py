"""What a transport plugin hands the core, and what the core hands a transport factory.

A plugin provides transports from :func:`~tinklet_core.hookspecs.tinklet_transports`, the way it
provides runtimes. ``--protocol NAME`` chooses a server transport; ``tinklet run`` uses the one
called ``file``. Only the chosen transport's factory is called.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinklet_core.options import PluginOption

if TYPE_CHECKING:
    import grpc

    from tinklet_core.transports.base import Transport


@dataclass(frozen=True)
class TransportSettings:
    """Everything a transport factory receives, read once from flags, env and config.

    ``target`` is the server address (``--tink``; empty when it was not given to a transport
    that does not need one), or the workflow file for the ``file``
    transport. ``credentials`` is ``None`` for a plaintext connection. ``options`` holds only the
    values of this transport's own :attr:`TransportSpec.options`. ``agent_attributes`` are the
    hardware facts of :mod:`tinklet_core.agent_attributes` (proto field names) for a protocol
    that can send them, ``None`` when ``--no-agent-attributes`` turned them off.
    ``report_grace`` is how many seconds a status report in flight may still take once
    ``cancelled`` is set (``--report-grace``): a transport abandons it then, so tinklet stops on
    time.
    """

    target: str
    identifier: str
    credentials: grpc.ChannelCredentials | None = None
    server_name: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    max_backoff: float = 5.0
    options: Mapping[str, Any] = field(default_factory=dict)
    agent_attributes: Mapping[str, Any] | None = None
    report_grace: float = 3.0


@dataclass(frozen=True)
class TransportSpec:
    """A transport a plugin provides: its name, aliases, options and how to open it.

    ``factory`` is called only when this transport is chosen, with :class:`TransportSettings`,
    and returns a :class:`~tinklet_core.transports.base.Transport`. Import heavy libraries (grpc,
    a NATS client) inside the factory, not at module level. ``needs_server`` says whether the
    transport needs a server address (``--tink``, then :attr:`TransportSettings.target`); one
    that finds its work elsewhere (a queue directory named by its own option) sets it False and
    ``--tink`` is not demanded.
    """

    name: str
    factory: Callable[[TransportSettings], Transport]
    summary: str = ""
    aliases: tuple[str, ...] = ()
    options: tuple[PluginOption, ...] = ()
    needs_server: bool = True
