"""An action's own account of its failure: ``/tinkerbell/failure-reason`` and ``failure-message``.

The contract Tinkerbell settled on: an action that fails may write a short reason (a word such
as ``DiskNotFound``) to ``/tinkerbell/failure-reason`` and a sentence for people to
``/tinkerbell/failure-message``. Container runtimes give each action a private, empty host
directory mounted at :data:`CONTAINER_DIR` (:func:`failure_directory`) and, when the action ends
FAILED or TIMEOUT, put what it wrote on the Outcome (:func:`with_action_failure`).

The files are the action's words, so they are read defensively: only regular files (never a
symlink an action planted to make tinklet read a host file; a FIFO or a device node is never
even opened: it is looked at through an ``O_PATH`` descriptor and reopened only when regular),
at most a few KiB, decoded leniently, folded to one line, control characters escaped.

The directory is private: it lives in the state dir (``--state-dir``, 0700, tinklet's user, see
:mod:`tinklet_core.state_dir`) and is itself 0700, made by ``mkdtemp`` (a new random name, so no
one can make it first). It belongs to the action's user when the runtime knows it (``owner``),
else to root: an action image whose ``USER`` is not root cannot write its failure files then.
(Before, the directory was ``chmod 0777`` in ``/tmp`` so that such actions could: every user of
the machine could then plant a reason, a symlink or a FIFO in it.)
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
from tinklet_core.state_dir import private_state_dir

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
    symlink or anything but a regular file. Nothing but a regular file is ever opened for
    reading (opening a device node can act on the device; a FIFO can block): ``path`` is
    looked at through an ``O_PATH`` descriptor, and that very file is reopened when regular."""
    try:
        handle = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return None
        descriptor = os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    finally:
        os.close(handle)
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


def numeric_owner(user: str) -> int | None:
    """The uid an image's ``USER`` (``"65534"``, ``"65534:100"``) runs as when it is numeric and
    not root, else ``None``: the failure directory then stays root's (a named user would need
    the image's ``/etc/passwd``, which tinklet does not read)."""
    uid = user.partition(":")[0].strip()
    return int(uid) if uid.isdigit() and int(uid) != 0 else None


@contextmanager
def failure_directory(state_dir: Path | None = None, owner: int | None = None) -> Iterator[Path]:
    """A new, empty, private host directory for one action's :data:`CONTAINER_DIR`, in
    ``state_dir`` (made private first, see :func:`~tinklet_core.state_dir.private_state_dir`;
    ``None``: a private temporary directory of its own); removed with all its contents when
    the block ends. Mode 0700, owned by ``owner`` (the action's uid) when given, else by
    tinklet's user."""
    parent = private_state_dir(state_dir) if state_dir is not None else None
    scratch = Path(tempfile.mkdtemp(prefix="tinklet-state-")) if parent is None else None
    directory = Path(tempfile.mkdtemp(prefix="tinklet-action-", dir=parent or scratch))
    try:
        if owner is not None and owner != os.geteuid():
            os.chown(directory, owner, -1)
        yield directory
    finally:
        shutil.rmtree(scratch or directory, ignore_errors=True)
