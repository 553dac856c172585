"""The test API server's object store: JSON objects with resourceVersions, and a change log that
watches read from.

Like etcd behind a real API server, every write bumps one cluster-wide ``resourceVersion`` and is
recorded as an ``ADDED``/``MODIFIED``/``DELETED`` change; a watch resumes from any version still
in the (bounded) change log and gets ``410 Gone`` for an older one.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


class StatusError(Exception):
    """An API error, answered as a ``Status`` object with the same code as a real API server."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> JSON:
        """The ``Status`` object a real API server sends for this error."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(resource: str, name: str) -> StatusError:
    """404 NotFound, worded like the API server."""
    return StatusError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})


def already_exists(resource: str, name: str) -> StatusError:
    """409 AlreadyExists, worded like the API server."""
    return StatusError(
        409, "AlreadyExists", f'{resource} "{name}" already exists', {"name": name, "kind": resource}
    )


def bad_request(message: str) -> StatusError:
    """400 BadRequest."""
    return StatusError(400, "BadRequest", message)


def now() -> str:
    """The current time in the API's RFC 3339 form."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def name_of(obj: JSON) -> str:
    """``metadata.name`` of an object."""
    return str(obj.get("metadata", {}).get("name") or "")


_FIELDS = ("metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.name")


class Selector:
    """Equality-based label selectors (``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``) and the
    ``metadata.name`` / ``metadata.namespace`` field selectors (and ``involvedObject.kind`` /
    ``involvedObject.name``, which only Events have)."""

    _TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*))?\s*$")

    def __init__(self, labels: str | None = None, fields: str | None = None) -> None:
        self._labels = self._parse(labels or "", "labelSelector")
        self._fields = self._parse(fields or "", "fieldSelector")
        for _negated, key, _op, _value in self._fields:
            if key not in _FIELDS:
                raise bad_request(
                    f'"{key}" is not a known field selector: only '
                    + ", ".join(f'"{name}"' for name in _FIELDS)
                )

    @classmethod
    def _parse(cls, text: str, what: str) -> list[tuple[bool, str, str, str]]:
        terms = []
        for part in filter(None, (piece.strip() for piece in text.split(","))):
            match = cls._TERM.match(part)
            if not match or (match.group(1) and match.group(3)):
                raise bad_request(f"unable to parse requirement: {what} {part!r}")
            terms.append((bool(match.group(1)), match.group(2), match.group(3) or "", match.group(4) or ""))
        return terms

    def matches(self, obj: JSON) -> bool:
        """True when ``obj`` satisfies every term."""
        metadata = obj.get("metadata", {})
        labels = metadata.get("labels") or {}
        involved = obj.get("involvedObject") or {}
        fields = {
            "metadata.name": metadata.get("name"),
            "metadata.namespace": metadata.get("namespace"),
            "involvedObject.kind": involved.get("kind"),
            "involvedObject.name": involved.get("name"),
        }
        return all(self._term(labels, term) for term in self._labels) and all(
            self._term(fields, term) for term in self._fields
        )

    @staticmethod
    def _term(values: JSON, term: tuple[bool, str, str, str]) -> bool:
        negated, key, op, expected = term
        if not op:
            return (key in values) != negated
        if op == "!=":
            return values.get(key) != expected
        return values.get(key) == expected


@dataclass(frozen=True)
class Change:
    """One write: its version, where it happened, its type, the object after it (never
    mutated: readers may share it), and when (``time.monotonic()``)."""

    version: int
    resource: str
    namespace: str
    type: str
    obj: JSON
    at: float = 0.0


Changes = list[Change]


class ObjectStore:
    """Thread-safe objects by (resource, namespace, name), with a bounded change log."""

    def __init__(self, history: int = 2000) -> None:
        self._cond = threading.Condition()
        self._objects: dict[tuple[str, str, str], JSON] = {}
        self._version = 0
        self._changes: deque[Change] = deque(maxlen=history)
        self._oldest = 0  # every change after this version is still in the log
        self._closed = False

    def close(self) -> None:
        """Wake every waiting watch so it can end."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def compact(self) -> None:
        """Forget the change log, as a restarted API server's watch cache starts at the current
        version: a watch resumed from an older version gets 410 Gone and must list again."""
        with self._cond:
            self._changes.clear()
            self._oldest = self._version

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def _record(self, resource: str, namespace: str, kind: str, obj: JSON) -> JSON:
        self._version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._version)
        if len(self._changes) == self._changes.maxlen:
            self._oldest = self._changes[0].version
        change = Change(self._version, resource, namespace, kind, copy.deepcopy(obj), time.monotonic())
        self._changes.append(change)
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def create(self, resource: str, namespace: str, obj: JSON) -> JSON:
        """Store a new object (uid, creationTimestamp and resourceVersion set); 409 if it exists."""
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        name = str(metadata.get("name") or "")
        with self._cond:
            if (resource, namespace, name) in self._objects:
                raise already_exists(resource, name)
            metadata.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=now())
            for key in ("deletionTimestamp", "resourceVersion"):
                metadata.pop(key, None)
            self._objects[(resource, namespace, name)] = obj
            return self._record(resource, namespace, "ADDED", obj)

    def get(self, resource: str, namespace: str, name: str) -> JSON:
        """A copy of the object; 404 if there is none."""
        with self._cond:
            obj = self._objects.get((resource, namespace, name))
            if obj is None:
                raise not_found(resource, name)
            return copy.deepcopy(obj)

    def list(self, resource: str, namespace: str, selector: Selector | None = None) -> tuple[list[JSON], int]:
        """Copies of the matching objects (oldest first) and the store's current version."""
        with self._cond:
            items = [
                copy.deepcopy(obj)
                for (kind, ns, _name), obj in self._objects.items()
                if kind == resource and ns == namespace and (selector is None or selector.matches(obj))
            ]
            return items, self._version

    def update(self, resource: str, namespace: str, name: str, mutate: Callable[[JSON], None]) -> JSON:
        """Apply ``mutate`` to a copy of the object and store it as a MODIFIED change."""
        with self._cond:
            current = self._objects.get((resource, namespace, name))
            if current is None:
                raise not_found(resource, name)
            obj = copy.deepcopy(current)
            mutate(obj)
            self._objects[(resource, namespace, name)] = obj
            return self._record(resource, namespace, "MODIFIED", obj)

    def replace(self, resource: str, namespace: str, name: str, new: JSON) -> JSON:
        """PUT: replace the object (keeping uid and creation time); 409 on a stale resourceVersion."""
        with self._cond:
            current = self._objects.get((resource, namespace, name))
            if current is None:
                raise not_found(resource, name)
            wanted = str(new.get("metadata", {}).get("resourceVersion") or "")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise StatusError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
            obj = copy.deepcopy(new)
            metadata = obj.setdefault("metadata", {})
            for key in ("uid", "creationTimestamp"):
                metadata[key] = current["metadata"][key]
            metadata["namespace"] = namespace
            self._objects[(resource, namespace, name)] = obj
            return self._record(resource, namespace, "MODIFIED", obj)

    def remove(self, resource: str, namespace: str, name: str) -> JSON:
        """Delete the object for good (a DELETED change); 404 if there is none."""
        with self._cond:
            obj = self._objects.pop((resource, namespace, name), None)
            if obj is None:
                raise not_found(resource, name)
            return self._record(resource, namespace, "DELETED", obj)

    def changes_after(self, version: int, resource: str, namespace: str, wait: float) -> tuple[Changes, int]:
        """Changes to ``resource`` in ``namespace`` after ``version``, waiting up to ``wait`` seconds
        for one; and the version to resume from. 410 Gone when ``version`` fell out of the log."""
        with self._cond:
            if version < self._oldest:
                raise StatusError(410, "Expired", f"too old resource version: {version} ({self._oldest})")
            if self._version <= version and not self._closed:
                self._cond.wait(wait)
            if version < self._oldest:
                raise StatusError(410, "Expired", f"too old resource version: {version} ({self._oldest})")
            found = [
                change
                for change in self._changes
                if change.version > version and change.resource == resource and change.namespace == namespace
            ]
            return found, self._version
