"""The action's own failure reason and message (/tinkerbell/failure-reason, failure-message):
read defensively from the host side, reported first."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tinklet_core.action_failure import (
    MAX_MESSAGE_BYTES,
    failure_directory,
    one_line_text,
    read_failure_file,
    with_action_failure,
)
from tinklet_core.model import Outcome, State
from tinklet_core.worker import MAX_MESSAGE, failure_message


def test_text_is_one_line_with_control_characters_escaped() -> None:
    assert one_line_text(b"DiskNotFound\n", 256) == "DiskNotFound"
    assert one_line_text(b"first\r\n\n  second  \n", 256) == "first | second"
    assert one_line_text(b"red \x1b[31m bell \x07 tab\there", 256) == "red \\x1b[31m bell \\x07 tab\\there"
    assert one_line_text(b"caf\xc3\xa9 \xff\xfe", 256) == "caf\u00e9 \ufffd\ufffd"


def test_text_is_cut_at_the_limit_and_says_so() -> None:
    assert one_line_text(b"x" * 300, 256) == "x" * 256 + "…"
    assert one_line_text(b"x" * 256, 256) == "x" * 256


def test_files_are_read_only_when_regular(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("root:$6$hash")
    action_dir = tmp_path / "tinkerbell"
    action_dir.mkdir()
    (action_dir / "failure-message").symlink_to(secret)
    assert read_failure_file(action_dir / "failure-message", MAX_MESSAGE_BYTES) == ""
    (action_dir / "failure-reason").mkdir()
    assert read_failure_file(action_dir / "failure-reason", 256) == ""
    assert read_failure_file(action_dir / "absent", 256) == ""


def test_a_fifo_does_not_block_the_worker(tmp_path: Path) -> None:
    fifo = tmp_path / "failure-message"
    os.mkfifo(fifo)
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(read_failure_file(fifo, 256)), daemon=True)
    reader.start()
    reader.join(5)
    assert result == [""], "reading a FIFO the action left must neither block nor report anything"


def test_only_failed_and_timed_out_outcomes_take_the_files(tmp_path: Path) -> None:
    (tmp_path / "failure-reason").write_text("DiskNotFound\n")
    (tmp_path / "failure-message").write_text("/dev/sdz does not exist\n")
    failed = with_action_failure(Outcome(State.FAILED, "exit code 1", 1), tmp_path)
    assert (failed.action_reason, failed.action_message) == ("DiskNotFound", "/dev/sdz does not exist")
    timeout = with_action_failure(Outcome(State.TIMEOUT, "timed out after 5s"), tmp_path)
    assert timeout.action_reason == "DiskNotFound"
    success = Outcome(State.SUCCESS, exit_code=0)
    assert with_action_failure(success, tmp_path) == success


def test_no_files_change_nothing(tmp_path: Path) -> None:
    outcome = Outcome(State.FAILED, "exit code 1", 1)
    assert with_action_failure(outcome, tmp_path) == outcome


def test_the_directory_is_empty_private_and_removed_with_its_contents() -> None:
    with failure_directory() as directory:
        assert list(directory.iterdir()) == []
        assert directory.stat().st_mode & 0o777 == 0o700, "no other user of the machine may write in it"
        assert directory.parent.stat().st_mode & 0o777 == 0o700
        (directory / "nested").mkdir()
        (directory / "nested" / "file").write_text("x")
        (directory / "failure-message").write_text("m")
    assert not directory.exists()


def test_the_action_speaks_first_in_the_report() -> None:
    both = Outcome(State.FAILED, "exit code 1", 1, "DiskNotFound", "/dev/sdz does not exist")
    assert failure_message(both, ["wiping", "oops"]) == (
        "DiskNotFound: /dev/sdz does not exist; exit code 1; last output: wiping | oops"
    )
    reason_only = Outcome(State.TIMEOUT, "timed out after 5s", action_reason="DiskBusy")
    assert failure_message(reason_only, []) == "DiskBusy; timed out after 5s"
    message_only = Outcome(State.FAILED, "exit code 2", 2, action_message="no disk")
    assert failure_message(message_only, []) == "no disk; exit code 2"
    assert failure_message(Outcome(State.FAILED, "exit code 2", 2), []) == "exit code 2"


def test_a_long_message_leaves_room_for_the_exit_code() -> None:
    outcome = Outcome(State.FAILED, "exit code 1", 1, "Reason", "m" * MAX_MESSAGE_BYTES)
    message = failure_message(outcome, ["last words"])
    assert len(message) <= MAX_MESSAGE
    assert "…; exit code 1; last output: last words" in message
