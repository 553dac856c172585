"""The one error the docker runtime passes between its modules, raised inside the runtime.

:class:`DockerFailure` never leaves ``tinklet_execute_action``: the runtime turns it into a
FAILED :class:`~tinklet_core.model.Outcome` whose reason is ``str(failure)``, one line.
"""

from __future__ import annotations

from tinklet_core.errors import TinkletError


class DockerFailure(TinkletError):
    """A docker call failed; ``str()`` is the one-line reason an Outcome carries."""
