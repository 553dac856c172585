"""One image pull Secret per workflow, made from tinklet's registry credentials.

The Secret (type ``kubernetes.io/dockerconfigjson``, a deterministic name per workflow and
worker) is made
when the workflow's environment is prepared and the first action's image needs credentials, and
grows when a later action pulls from another registry that needs them. Every Job of the
workflow names it in ``imagePullSecrets``; cleaning up the environment deletes it when this worker
stored it (a workflow without credentials never touches Secrets, so a Role without Secret access
is enough for it; a Secret a crashed worker left is taken over, and deleted, when the workflow
needs credentials again).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from tinklet_core.model import RegistryCredentials
from tinklet_kube.errors import KubeApiError
from tinklet_kube.manifests import pull_secret_manifest
from tinklet_kube.names import pull_secret_name

JSON = dict[str, Any]


class SecretApi(Protocol):
    """What this module needs from the API (see :class:`tinklet_kube.api.KubeApi`)."""

    namespace: str

    def create_secret(self, manifest: JSON) -> None:
        """Create a Secret."""
        ...

    def replace_secret(self, name: str, manifest: JSON) -> None:
        """Replace a Secret."""
        ...

    def delete_secret(self, name: str) -> bool:
        """Delete a Secret; ``False`` if it was gone."""
        ...


class PullSecrets:
    """The pull Secrets of the workflows this worker runs, with the credentials each holds."""

    def __init__(self, api: SecretApi) -> None:
        self._api = api
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, RegistryCredentials]] = {}

    def ensure(self, workflow_id: str, agent_id: str, credentials: RegistryCredentials) -> str:
        """The workflow's Secret name, after making sure it holds ``credentials``."""
        name = pull_secret_name(workflow_id, agent_id)
        with self._lock:
            held = self._held.get(workflow_id, {})
            if held.get(credentials.registry) == credentials:
                return name
            wanted = {**held, credentials.registry: credentials}
            manifest = pull_secret_manifest(name, self._api.namespace, workflow_id, agent_id, wanted.values())
            try:
                try:
                    self._api.create_secret(manifest)
                except KubeApiError as exc:
                    if exc.status != 409:
                        raise
                    self._api.replace_secret(name, manifest)
            except KubeApiError as exc:
                raise KubeApiError(f"cannot store pull secret {name}: {exc}", status=exc.status) from None
            self._held[workflow_id] = wanted
        return name

    def for_action(
        self, workflow_id: str, agent_id: str, credentials: RegistryCredentials | None
    ) -> str | None:
        """The Secret an action's Job names, or ``None`` when its workflow needs none."""
        if credentials is not None:
            return self.ensure(workflow_id, agent_id, credentials)
        with self._lock:
            return pull_secret_name(workflow_id, agent_id) if workflow_id in self._held else None

    def remove(self, workflow_id: str, agent_id: str) -> bool:
        """Delete the workflow's Secret if this worker stored it; ``False`` when there was none."""
        with self._lock:
            held = self._held.pop(workflow_id, None)
        if held is None:
            return False
        return self._api.delete_secret(pull_secret_name(workflow_id, agent_id))
