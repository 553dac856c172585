"""An audit log: one JSON line per finished action in ``--audit-log FILE``.

Each line has the workflow, task and action ids, the action's name, the image that ran (after
any rewrite), the final state, the duration in seconds and the message reported.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinklet_core import Event, PluginOption, hookimpl


class AuditLog:
    """Appends a line for each final event (observers run in tinklet's observer thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @hookimpl
    def tinklet_action_event(self, event: Event) -> None:
        """Record a final state; RUNNING is not recorded."""
        if not event.state.is_final:
            return
        duration = event.duration
        line = {
            "workflow": event.action.workflow_id,
            "task": event.action.task_id,
            "action": event.action.action_id,
            "name": event.action.name,
            "image": event.action.image,
            "state": event.state.value,
            "seconds": None if duration is None else round(duration.total_seconds(), 3),
            "message": event.message,
        }
        with self._lock, self.path.open("a") as out:
            out.write(json.dumps(line) + "\n")

    def close(self) -> None:
        """Nothing is held open between events."""


@hookimpl
def tinklet_options() -> list[PluginOption]:
    """``--audit-log FILE``."""
    return [PluginOption("audit-log", "File to append one JSON line per finished action to.")]


@hookimpl
def tinklet_configure(options: Mapping[str, Any]) -> AuditLog | None:
    """The audit log, when a file is set."""
    return AuditLog(Path(options["audit_log"])) if options["audit_log"] else None
