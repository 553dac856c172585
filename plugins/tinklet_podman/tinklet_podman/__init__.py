"""The ``podman`` runtime for tinklet: Tinkerbell actions as containers on Podman, daemonless.

This is the plugin's entry-point module (group ``tinklet``, name ``podman``). Importing it is
cheap: it pulls in only the core's plugin records. The spec's factory is a
:class:`~tinklet_core.lazy_factory.LazyFactory` naming :class:`tinklet_podman.runtime.PodmanRuntime`
and its hooks, so the runtime's modules and podman-py are imported only when the runtime is
opened.

Action execution is the core's shared container layer (:mod:`tinklet_core.containers`); this
plugin is the podman-py engine adapter plus what is Podman's own. Where Podman differs from
Docker, the plugin makes up for it:

- **No daemon.** Without ``--podman-socket`` the runtime tries
  ``$XDG_RUNTIME_DIR/podman/podman.sock`` and ``/run/podman/podman.sock``; when none answers it
  starts ``podman system service --time=0`` on a private socket and stops it on close
  (:mod:`tinklet_podman.connect`, :mod:`tinklet_podman.service`).
- **Short image names.** Podman does not read ``busybox`` as Docker Hub's. An unqualified
  image runs ``localhost/NAME`` when that exists (imported images), else
  ``docker.io/[library/]NAME`` as with Docker (:mod:`tinklet_podman.images`). ``localhost/``
  images have no registry, so they are never pulled, even with the ``always`` policy.
- **Ulimits as root.** Podman's default ulimits fail to apply in sandboxes without
  CAP_SYS_RESOURCE; after such a failure the runtime retries with limits the service can apply
  (:mod:`tinklet_podman.ulimits`). ``default_ulimits = []`` in containers.conf avoids the retry.
- **Lost log lines.** Podman 4.3.1 drops lines when following a fast writer's logs; the runtime
  attaches before start instead, and when that live stream breaks it completes the output from
  the container's stored log after exit (the shared runtime does, through ``PodmanEngine.logs``).
- **Pull failures are not raised** by podman-py; the pull stream's error event is turned into a
  FAILED action with the registry's words (:mod:`tinklet_podman.engine`).
- Containers log with Podman's ``k8s-file`` driver whatever the host default is, so the
  complete output can be read back after exit; the log goes away with the container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinklet_core.hookspecs import hookimpl
from tinklet_core.lazy_factory import LazyFactory
from tinklet_core.runtime import RuntimeOption, RuntimeSpec

if TYPE_CHECKING:
    from tinklet_podman.runtime import PodmanRuntime

__all__ = ["PodmanRuntime", "tinklet_runtimes"]


@hookimpl
def tinklet_runtimes() -> list[RuntimeSpec]:
    """One runtime, ``podman``, with its socket and binary options."""
    return [
        RuntimeSpec(
            name="podman",
            factory=LazyFactory("tinklet_podman.runtime:PodmanRuntime", hooks=("tinklet_execute_action",)),
            summary="containers on Podman (podman-py), starting its own service when none runs",
            options=(
                RuntimeOption(
                    "podman-socket",
                    "Podman API socket (path or unix:// URL); default: the user's or root's usual "
                    "socket, else a private podman service tinklet starts and stops",
                ),
                RuntimeOption(
                    "xdg-runtime-dir",
                    "the user's runtime directory holding their Podman socket (default: XDG_RUNTIME_DIR)",
                    env_fallback="XDG_RUNTIME_DIR",
                ),
                RuntimeOption(
                    "podman-binary",
                    "the podman command that starts a private service when no socket answers",
                    default="podman",
                ),
            ),
        )
    ]


def __getattr__(name: str) -> Any:
    """``from tinklet_podman import PodmanRuntime`` imports the runtime module only then."""
    if name == "PodmanRuntime":
        from tinklet_podman.runtime import PodmanRuntime

        return PodmanRuntime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
