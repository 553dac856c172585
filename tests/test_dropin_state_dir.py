"""Per-action /tinkerbell directories in --state-dir: private to tinklet's user (0700, made so
no one can make them first), never a device or FIFO opened, and a word at start when a worker
in a container keeps them where the host's engine cannot see them."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from tinklet_core.action_failure import (
    MAX_MESSAGE_BYTES,
    failure_directory,
    read_failure_file,
    with_action_failure,
)
from tinklet_core.model import Outcome, State
from tinklet_core.state_dir import StateDirError, private_state_dir, shared_with_host

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

BUSYBOX = "/bin/busybox"  # static: runs as any user (the venv's Python lives under /root)


def plant_as_nobody(directory: Path) -> subprocess.CompletedProcess[str]:
    """The reproduction: another (unprivileged) user writes a failure reason into an action's
    directory while the action runs. Exit 3 when it could not."""
    script = 'echo PlantedByAnotherUser > "$1/failure-reason" || exit 3; echo planted'
    return subprocess.run(
        [BUSYBOX, "sh", "-c", script, "plant", str(directory)], user=NOBODY, group=NOBODY,
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@needs_root
def test_another_user_cannot_plant_a_reason_in_the_default_directory() -> None:
    with failure_directory() as directory:
        result = plant_as_nobody(directory)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "Permission denied" in result.stderr
        outcome = with_action_failure(Outcome(State.FAILED, "exit code 1", 1), directory)
        assert outcome.action_reason == ""


@needs_root
def test_another_user_cannot_plant_a_reason_in_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "worker"
    state.mkdir(mode=0o777)
    state.chmod(0o777)  # as HookOS or an operator may have left it
    with failure_directory(state) as directory:
        assert directory.parent == state
        assert state.stat().st_mode & 0o777 == 0o700
        assert directory.stat().st_mode & 0o777 == 0o700
        assert (directory.stat().st_uid, state.stat().st_uid) == (0, 0)
        result = plant_as_nobody(directory)
        assert result.returncode == 3, result.stdout + result.stderr
    assert not directory.exists() and state.is_dir(), "the action's directory goes, the state dir stays"


@needs_root
def test_the_actions_user_owns_its_directory_when_known(tmp_path: Path) -> None:
    with failure_directory(tmp_path / "state", owner=NOBODY) as directory:
        assert directory.stat().st_uid == NOBODY and directory.stat().st_mode & 0o777 == 0o700
        assert plant_as_nobody(directory).returncode == 3, "the state dir above still keeps others out"


@needs_root
def test_a_state_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(StateDirError, match="belongs to uid 65534"):
        private_state_dir(theirs)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(StateDirError, match="not a directory"):
        private_state_dir(link)


@needs_root
def test_a_device_node_reads_as_nothing(tmp_path: Path) -> None:
    node = tmp_path / "failure-message"
    os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # a character device like /dev/zero
    assert read_failure_file(node, MAX_MESSAGE_BYTES) == ""


def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    """Opening a node can act on it (a tape rewinds, a watchdog arms; a privileged action can
    leave any node as its failure-message): only regular files are opened. A writer's blocking
    open of a FIFO returns exactly when a reader opens it, which makes an open observable."""
    fifo = tmp_path / "failure-reason"
    os.mkfifo(fifo)
    writer_saw_reader = threading.Event()

    def writer() -> None:
        descriptor = os.open(fifo, os.O_WRONLY)  # blocks until someone opens it for reading
        writer_saw_reader.set()
        os.close(descriptor)

    threading.Thread(target=writer, daemon=True).start()
    try:
        assert read_failure_file(fifo, 256) == ""
        assert not writer_saw_reader.wait(1), "tinklet opened the FIFO"
    finally:
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # let the writer go


def test_regular_files_are_still_read(tmp_path: Path) -> None:
    (tmp_path / "failure-message").write_text("/dev/sdz does not exist\n")
    assert read_failure_file(tmp_path / "failure-message", MAX_MESSAGE_BYTES) == "/dev/sdz does not exist"


MOUNTINFO = """\
900 800 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
901 900 0:51 / /proc rw - proc proc rw
902 900 254:0 /worker /worker rw,relatime - ext4 /dev/vda rw
903 900 0:5 / /dev rw - devtmpfs devtmpfs rw
"""


def test_a_state_dir_on_a_bind_mount_is_shared_with_the_host() -> None:
    assert shared_with_host(Path("/worker"), MOUNTINFO)
    assert shared_with_host(Path("/worker/tinklet"), MOUNTINFO)
    assert not shared_with_host(Path("/var/lib/tinklet"), MOUNTINFO)
    assert not shared_with_host(Path("/workers"), MOUNTINFO)
    assert not shared_with_host(Path("/tmp"), MOUNTINFO)
