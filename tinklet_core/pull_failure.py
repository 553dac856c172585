"""How every runtime words a failed image pull: the image, its registry, whether tinklet had a
login for it, and the engine's reason with the password masked in every encoding.

Engines call :func:`pull_failure_message` with what the engine said; the worker reports it::

    image pull failed: 127.0.0.1:5000/tools/disk:1 from 127.0.0.1:5000: unauthorized: …
    image pull failed: 127.0.0.1:5000/tools/disk:1 from 127.0.0.1:5000 (no login was found for
    127.0.0.1:5000): … connection reset by peer

The second form matters most where the engine hides the real reason: dockerd treats loopback
registries as insecure and, after the registry's 401 over HTTPS, retries over plain HTTP, so a
missing login shows up as "connection reset by peer".
"""

from __future__ import annotations

from tinklet_core.model import RegistryCredentials
from tinklet_core.redaction import mask_credentials
from tinklet_core.runtime import image_registry, normalise_registry
from tinklet_core.runtime_helpers import one_line


def pull_failure_message(image: str, reason: str, credentials: RegistryCredentials | None) -> str:
    """One line naming ``image``, its registry and (when ``credentials`` is ``None``) the missing
    login, then the engine's ``reason``; the password of ``credentials`` never appears."""
    registry = normalise_registry(image_registry(image))
    where = f"{image} from {registry}"
    if credentials is None:
        where += f" (no login was found for {registry})"
    words = one_line(reason) or "no reason given"
    return mask_credentials(f"image pull failed: {where}: {words}", credentials)
