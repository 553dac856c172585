"""Kubernetes names and label values derived from tinklet's ids, deterministically.

Workflow and action ids come from the Tink server and may hold characters Kubernetes refuses
(``/``, upper case, long UUID chains). Object names must be DNS-1123 labels (at most 63
characters of ``[a-z0-9-]``, alphanumeric at both ends); label values at most 63 characters of
``[A-Za-z0-9-_.]``, alphanumeric at both ends. A readable slug of the id plus a short hash of the
raw id keeps names unique and lets a restarted worker find what a crashed one made.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
HASH_CHARS = 10
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def short_hash(*parts: str) -> str:
    """A short, stable hex digest of ``parts`` (joined so that ``("a", "bc") != ("ab", "c")``)."""
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:HASH_CHARS]


def slug(text: str, limit: int) -> str:
    """``text`` lower-cased with every run of other characters turned into one ``-``, cut to ``limit``."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:limit].strip("-")


def object_name(prefix: str, readable: str, *ids: str) -> str:
    """``PREFIX-SLUG-HASH``: a valid DNS-1123 label, unique for ``ids``, at most 63 characters."""
    room = MAX_NAME - len(prefix) - 2 - HASH_CHARS
    readable_part = slug(readable, room)
    digest = short_hash(*ids)
    return f"{prefix}-{readable_part}-{digest}" if readable_part else f"{prefix}-{digest}"


def job_name(workflow_id: str, action_id: str) -> str:
    """The name of the Job that runs one action of one workflow."""
    return object_name("tinklet", action_id, workflow_id, action_id)


def pull_secret_name(workflow_id: str, agent_id: str) -> str:
    """The name of the image pull Secret of one workflow on one worker (a workflow's tasks may
    run on several workers sharing a namespace; each cleans up only its own Secret)."""
    return object_name("tinklet-pull", workflow_id, workflow_id, agent_id)


def is_dns_label(name: str) -> bool:
    """True when ``name`` is a valid DNS-1123 label (what Job names must be)."""
    return len(name) <= MAX_NAME and bool(_DNS_LABEL.match(name))


def is_label_value(value: str) -> bool:
    """True when ``value`` is a valid Kubernetes label value."""
    return len(value) <= MAX_NAME and bool(_LABEL_VALUE.match(value))


def label_value(raw: str) -> str:
    """``raw`` when it is a valid label value, else a sanitised prefix of it plus a hash of it."""
    if is_label_value(raw):
        return raw
    room = MAX_NAME - 1 - HASH_CHARS
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)[:room]
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    digest = short_hash(raw)
    return f"{cleaned}-{digest}" if cleaned else digest
