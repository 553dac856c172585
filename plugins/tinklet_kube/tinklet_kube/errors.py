"""The kube runtime's own error; messages are one line and never carry a secret."""

from __future__ import annotations

from tinklet_core.errors import TinkletError


class KubeApiError(TinkletError):
    """A Kubernetes API call failed. ``status`` is the HTTP status (0 when the API was not
    reached or a stream broke) and ``reason`` the API's reason word (``NotFound``,
    ``AlreadyExists``…)."""

    def __init__(
        self, message: str, *, status: int = 0, reason: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        #: Seconds the server asked the client to wait (its ``Retry-After`` header), if it did.
        self.retry_after = retry_after

    @property
    def passing(self) -> bool:
        """True when the same call may succeed later: the API was not reached (``status`` 0),
        or it answered 429 (too many requests) or 5xx (an apiserver restarting or failing over)."""
        return self.status == 0 or self.status == 429 or self.status >= 500
