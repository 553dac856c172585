"""The one error the podman runtime passes between its modules, raised inside the runtime.

:class:`PodmanFailure` never leaves ``tinklet_execute_action``: the runtime turns it into a FAILED
:class:`~tinklet_core.model.Outcome` whose reason is ``str(failure)``, one line with no secret.
"""

from __future__ import annotations

from tinklet_core.errors import TinkletError


class PodmanFailure(TinkletError):
    """A call to the Podman service failed; ``str()`` is the one-line reason an Outcome carries."""
