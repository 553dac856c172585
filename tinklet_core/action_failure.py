"""An action's own account of its failure: ``/tinkerbell/failure-reason`` and ``failure-message``.

The contract Tinkerbell settled on: an action that fails may write a short reason (a word such
as ``DiskNotFound``) to ``/tinkerbell/failure-reason`` and a sentence for people to
``/tinkerbell/failure-message``. Container runtimes give each action a private, empty host
directory mounted at :data:`CONTAINER_DIR` (:func:`failure_directory`) and, when the action ends
FAILED or TIMEOUT, put what it wrote on the Outcome (:func:`with_action_failure`).

The files are the action's words, so they are read defensively: only regular files (never a
symlink an action planted to make tinklet read a host file, never a FIFO), at most a few KiB,
decoded leniently, folded to one line, control characters escaped.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tinklet_core.model import Outcome, State

#: Where the directory appears inside the action's container.
CONTAINER_DIR = "/tinkerbell"
REASON_FILE = "failure-reason"
MESSAGE_FILE = "failure-message"
#: How much of each file is read (the message as much as Kubernetes keeps of a termination message).
MAX_REASON_BYTES = 256
MAX_MESSAGE_BYTES = 4096


def one_line_text(raw: bytes, limit: int) -> str:
    """``raw`` decoded leniently (UTF-8, bad bytes replaced), its lines joined by ``" | "``,
    other control characters escaped (``\\x1b``), cut at ``limit`` bytes (the cut marked ``…``)."""
    cut = len(raw) > limit
    text = raw[:limit].decode("utf-8", errors="replace")
    lines = [line.strip() for line in text.splitlines()]
    joined = " | ".join(line for line in lines if line)
    escaped = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in joined)
    return escaped + "…" if cut and escaped else escaped


def read_regular_file(path: Path, limit: int) -> bytes | None:
    """Up to ``limit + 1`` bytes of ``path``, or ``None`` when it is missing, unreadable, a
    symlink or anything but a regular file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return os.read(descriptor, limit + 1)
    except OSError:
        return None
    finally:
        os.close(descriptor)


def read_failure_file(path: Path, limit: int) -> str:
    """The one-line text of ``path`` (see :func:`one_line_text`), ``""`` when there is none."""
    raw = read_regular_file(path, limit)
    return one_line_text(raw, limit) if raw else ""


def with_action_failure(outcome: Outcome, directory: Path) -> Outcome:
    """``outcome`` with the reason and message the action wrote into ``directory`` (the host
    side of :data:`CONTAINER_DIR`); unchanged unless it is FAILED or TIMEOUT."""
    if outcome.state not in (State.FAILED, State.TIMEOUT):
        return outcome
    reason = read_failure_file(directory / REASON_FILE, MAX_REASON_BYTES)
    message = read_failure_file(directory / MESSAGE_FILE, MAX_MESSAGE_BYTES)
    if not (reason or message):
        return outcome
    return dataclasses.replace(outcome, action_reason=reason, action_message=message)


@contextmanager
def failure_directory() -> Iterator[Path]:
    """A new, empty host directory for one action's :data:`CONTAINER_DIR`; removed with all
    its contents when the block ends. Writable by any user, so an action running as a user
    other than root can write its files too."""
    directory = Path(tempfile.mkdtemp(prefix="tinklet-action-"))
    try:
        directory.chmod(0o777)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
