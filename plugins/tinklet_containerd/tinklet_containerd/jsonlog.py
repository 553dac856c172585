"""A container's output as a nerdctl-compatible json-file log, and read back as frames.

nerdctl (and Docker's json-file driver) store one JSON object per line of output:
``{"log":"the line\\n","stream":"stdout","time":"2026-…Z"}``. ``nerdctl logs`` finds the file
through the container's ``nerdctl/state-dir`` label and the ``log-config.json`` next to it
(:func:`write_log_config`), under nerdctl's data store for the socket (:func:`data_store`).

Writing is on the path of every byte an action prints, so a block of complete lines that needs
no JSON escaping (the common case: printable ASCII without quotes or backslashes, found with one
``bytes.translate``) is encoded with one ``bytes.replace`` for the whole block; other lines are
encoded one by one. All lines of one block share one time stamp.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tinklet_core.containers.engine import STDERR, STDOUT

DEFAULT_DATA_ROOT = "/var/lib/nerdctl"
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
#: Bytes a JSON string holds as they are: printable ASCII but ``"`` and ``\\``; and the newline,
#: which :func:`encode` replaces itself. ``bytes.translate`` deleting these leaves what needs care.
_VERBATIM = bytes(sorted((set(range(0x20, 0x7F)) - {0x22, 0x5C}) | {0x0A}))


def data_store(data_root: str, socket: str) -> Path:
    """nerdctl's data store for the containerd at ``socket``: ``DATA_ROOT/<8 hex of sha256 of
    the socket's real path>``."""
    digest = hashlib.sha256(os.path.realpath(socket).encode()).hexdigest()[:8]
    return Path(data_root) / digest


def container_dir(store: Path, namespace: str, container: str) -> Path:
    """The directory nerdctl keeps a container's log and log config in."""
    return store / "containers" / namespace / container


def log_file(directory: Path, container: str) -> Path:
    """The json-file log in ``directory`` (:func:`container_dir`)."""
    return directory / f"{container}-json.log"


def write_log_config(directory: Path, socket: str) -> None:
    """``log-config.json``: tells ``nerdctl logs`` the container logs to a json file."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = {"driver": "json-file", "opts": {}, "address": f"unix://{socket}"}
    (directory / "log-config.json").write_text(json.dumps(config))


def _now() -> bytes:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


class JsonLogWriter:
    """Appends output blocks to a json-file log; keeps each stream's unfinished line."""

    def __init__(self, path: Path) -> None:
        self._file: IO[bytes] = open(path, "ab")  # noqa: SIM115 (closed by close())
        self._pending = {STDOUT: b"", STDERR: b""}

    def write(self, stream: int, data: bytes) -> None:
        """Add ``data`` of ``stream``; its complete lines are written at once."""
        data = self._pending[stream] + data if self._pending[stream] else data
        end = data.rfind(b"\n") + 1
        self._pending[stream] = data[end:]
        if end:
            self._file.write(encode(stream, data[:end]))

    def close(self) -> None:
        """Write each stream's unfinished last line, close the file."""
        for stream, rest in self._pending.items():
            if rest:
                self._file.write(encode(stream, rest))
        self._pending = {STDOUT: b"", STDERR: b""}
        self._file.close()


def encode(stream: int, block: bytes) -> bytes:
    """JSON lines for ``block`` (complete lines, or one unfinished last line)."""
    tail = b',"stream":"' + STREAM_NAMES[stream].encode() + b'","time":"' + _now() + b'"}\n'
    if not block.translate(None, _VERBATIM):
        head, close = b'{"log":"', b'"' + tail
        newline = b"\\n" + close + head
        if block.endswith(b"\n"):
            return head + block[:-1].replace(b"\n", newline) + b"\\n" + close
        return head + block.replace(b"\n", newline) + close
    lines = block.splitlines(keepends=True)
    return b"".join(
        b'{"log":' + json.dumps(line.decode("utf-8", "replace")).encode() + tail for line in lines
    )


def read_frames(path: Path) -> Iterator[tuple[int, bytes]]:
    """The logged output as ``(STDOUT or STDERR, payload)`` frames, in order."""
    try:
        log = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with log:
        for line in log:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            yield (STDERR if entry.get("stream") == "stderr" else STDOUT), str(entry.get("log", "")).encode()


class StoredLog:
    """A json-file log as an :class:`~tinklet_core.containers.engine.OutputStream`."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return read_frames(self._path)

    def close(self) -> None:
        """Nothing to release: the file is read to its end by the iteration."""
