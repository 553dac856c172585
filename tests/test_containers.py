"""The shared container layer's pure parts: the spec an action becomes, privilege against the
host's bounding set, engine output frames to batches of lines, and how the worker logs them."""

from __future__ import annotations

import io
import logging
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinklet_core.containers.capabilities import CAPABILITY_NAMES, bounding_set, missing_capabilities
from tinklet_core.containers.engine import STDERR, STDOUT, EngineFailure, failing_as, pull_error
from tinklet_core.containers.frames import FrameDecoder, read_frames
from tinklet_core.containers.output import Handoff, OutputLines
from tinklet_core.containers.spec import Mount, Ulimit, container_spec
from tinklet_core.model import Action, Volume
from tinklet_core.runtime import LineBatcher, LineSplitter, Privilege
from tinklet_core.worker import OutputTail


def action(**fields: object) -> Action:
    """An action with fixed ids and these fields."""
    values: dict[str, object] = {
        "workflow_id": "wf",
        "task_id": "task",
        "action_id": "act",
        "agent_id": "agent",
        "name": "disk wipe/now",
        "image": "img",
    }
    values.update(fields)
    return Action(**values)  # type: ignore[arg-type]


def test_an_action_becomes_one_container_spec() -> None:
    spec = container_spec(
        action(
            command=("sh", "-c", "echo"),
            env=(("DEST", "/dev/sda"), ("ARGS", "a=b c=d")),
            volumes=(
                Volume("/dev", "/dev"),
                Volume("/etc/hosts", "/hosts", read_only=True),
                Volume("cache", "/c"),
            ),
            pid_namespace="host",
            network_namespace="host",
        ),
        "localhost/img",
        Privilege.PRIVILEGED,
        "abc123",
        (Ulimit("nofile", 1, 2),),
    )
    assert spec.name.startswith("tinklet-disk-wipe-now-") and spec.name.endswith("-abc123")
    assert spec.image == "localhost/img"
    assert spec.command == ("sh", "-c", "echo")
    assert spec.env_list == ["DEST=/dev/sda", "ARGS=a=b c=d"]
    assert dict(spec.labels) == action().labels()
    assert spec.mounts == (
        Mount("/dev", "/dev", False, True),
        Mount("/etc/hosts", "/hosts", True, True),
        Mount("cache", "/c", False, False),
    )
    assert [mount.bind for mount in spec.mounts] == ["/dev:/dev:rw", "/etc/hosts:/hosts:ro", "cache:/c:rw"]
    assert spec.privileged and (spec.cap_add, spec.cap_drop) == ((), ())
    assert (spec.pid_mode, spec.network_mode) == ("host", "host")
    assert spec.ulimits == (Ulimit("nofile", 1, 2),)


def test_names_are_readable_stable_per_action_and_differ_between_actions() -> None:
    name = container_spec(action(), "i", Privilege.NONE, "s").name
    assert name == container_spec(action(), "i", Privilege.NONE, "s").name
    assert name != container_spec(action(action_id="other"), "i", Privilege.NONE, "s").name
    assert container_spec(action(name=""), "i", Privilege.NONE, "s").name.startswith("tinklet-act-")


def test_only_the_host_namespace_is_passed_on_and_an_empty_command_keeps_the_images() -> None:
    spec = container_spec(
        action(pid_namespace="container:x", network_namespace="bridge"), "i", Privilege.NONE, "s"
    )
    assert (spec.command, spec.pid_mode, spec.network_mode, spec.mounts) == ((), "", "", ())


@pytest.mark.parametrize(
    ("privilege", "privileged", "cap_add", "cap_drop"),
    [
        (Privilege.PRIVILEGED, True, (), ()),
        (Privilege.ALL_CAPS, False, ("ALL",), ("SYS_RESOURCE",)),
        (Privilege.NONE, False, (), ()),
    ],
)
def test_privilege_grants_only_what_the_bounding_set_holds(
    privilege: Privilege, privileged: bool, cap_add: tuple[str, ...], cap_drop: tuple[str, ...]
) -> None:
    spec = container_spec(action(), "i", privilege, "s", missing=("SYS_RESOURCE",))
    assert (spec.privileged, spec.cap_add, spec.cap_drop) == (privileged, cap_add, cap_drop)


def test_the_bounding_set_is_read_from_proc(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n")
    assert bounding_set(status.read_text()) == 0x1FFFEFFFFFF
    assert missing_capabilities(status) == ("SYS_RESOURCE",)
    assert missing_capabilities(tmp_path / "absent") == ()
    status.write_text(f"CapBnd:\t{(1 << len(CAPABILITY_NAMES)) - 1:016x}\n")
    assert missing_capabilities(status) == ()


def test_all_caps_on_this_host_drops_what_its_bounding_set_lacks() -> None:
    mask = bounding_set(Path("/proc/self/status").read_text())
    assert mask is not None
    expected = tuple(name for bit, name in enumerate(CAPABILITY_NAMES) if not mask >> bit & 1)
    spec = container_spec(action(), "i", Privilege.ALL_CAPS, "s")
    assert spec.cap_add == ("ALL",) and spec.cap_drop == expected


def test_engine_failures_are_one_line_without_the_secret() -> None:
    with (
        pytest.raises(EngineFailure) as failed,
        failing_as(
            "image pull failed",
            "hunter2",
            api_errors=(ValueError,),
            connection_errors=(OSError,),
            service="engine",
        ),
    ):
        raise ValueError("login hunter2\nrefused")
    assert str(failed.value) == "image pull failed: login *** refused"
    with (
        pytest.raises(EngineFailure) as unreachable,
        failing_as(
            "container list failed",
            None,
            api_errors=(ValueError,),
            connection_errors=(OSError,),
            service="engine at x",
        ),
    ):
        raise ConnectionRefusedError(111, "Connection refused")
    assert str(unreachable.value) == "container list failed: engine at x is not reachable: Connection refused"


def test_pull_errors_are_read_from_either_field_of_a_progress_event() -> None:
    assert pull_error({"errorDetail": {"message": "unknown blob"}, "error": "unknown blob"}) == "unknown blob"
    assert pull_error({"error": "denied"}) == "denied"
    assert pull_error({"status": "Downloading", "id": "abc"}) is None
    assert pull_error("not an event") is None


def frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame as the engines send it."""
    return struct.pack(">BxxxL", stream, len(payload)) + payload


class Trickle(io.BytesIO):
    """A reader that hands out at most 3 bytes per read, like a slow socket."""

    def read1(self, size: int | None = -1, /) -> bytes:
        return super().read1(min(3, size if size and size > 0 else 3))


def test_frames_are_read_across_short_reads() -> None:
    data = frame(1, b"hello\nwor") + frame(2, b"oops\n") + frame(0, b"") + frame(1, b"ld\n")
    assert list(read_frames(Trickle(data))) == [
        (STDOUT, b"hello\nwor"),
        (STDERR, b"oops\n"),
        (STDOUT, b"ld\n"),
    ]


def test_an_unfinished_frame_is_held_back() -> None:
    decoder = FrameDecoder()
    whole = frame(1, b"complete\n") + frame(2, b"cut short")
    assert list(decoder.feed(whole[:-3])) == [(STDOUT, b"complete\n")]
    assert decoder.pending == 8 + len(b"cut short") - 3
    assert list(decoder.feed(whole[-3:])) == [(STDERR, b"cut short")]
    assert decoder.pending == 0


def test_a_chunk_of_many_lines_is_one_batch() -> None:
    batches: list[list[str]] = []
    batcher = LineBatcher(batches.append, max_line=8)
    batcher.feed(b"one\r\ntwo\nthr")
    batcher.feed(b"ee\n\xff\xfe bad\nno newline at all")
    batcher.close()
    assert batches == [["one", "two"], ["three", "\ufffd\ufffd bad", "no newli", "ne at al"], ["l"]]


def test_a_complete_line_longer_than_the_limit_is_cut_too() -> None:
    batches: list[list[str]] = []
    batcher = LineBatcher(batches.append, max_line=4)
    batcher.feed(b"abcdefghij\n\nxy\n")
    assert batches == [["abcd", "efgh", "ij", "", "xy"]]


def test_line_splitter_still_hands_out_single_lines() -> None:
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    splitter.feed(b"a\nb\nc")
    splitter.close()
    assert lines == ["a", "b", "c"]


def test_output_lines_keep_streams_apart() -> None:
    lines: list[str] = []
    output = OutputLines(lines.extend)
    output.feed_all([(STDOUT, b"out "), (STDERR, b"err\n"), (STDOUT, b"line\nlast")])
    assert lines == ["err", "out line", "last"]
    assert output.delivered == {STDOUT: 13, STDERR: 4}
    assert output.emitted == 3 and not output.broken


def test_catch_up_emits_only_what_was_missed_and_completes_a_cut_line() -> None:
    def broken_stream() -> Iterator[tuple[int, bytes]]:
        yield STDOUT, b"1\n2\n3"
        yield STDERR, b"e1\n"
        raise ConnectionResetError("the attach stream broke")

    lines: list[str] = []
    output = OutputLines(lines.extend)
    with pytest.raises(ConnectionResetError):
        output.feed_all(broken_stream())
    assert lines == ["1", "2", "e1"], "the cut line is held back"
    complete = [(STDOUT, b"1\n2\n"), (STDERR, b"e1\ne2\n"), (STDOUT, b"3"), (STDOUT, b"4\n5")]
    assert output.catch_up(complete) == 3
    assert lines == ["1", "2", "e1", "e2", "34", "5"]


def test_catch_up_after_a_complete_stream_emits_nothing() -> None:
    lines: list[str] = []
    output = OutputLines(lines.extend)
    output.feed_all([(STDOUT, b"a\nb"), (STDERR, b"c\n")])
    assert output.catch_up([(STDOUT, b"a\n"), (STDERR, b"c\n"), (STDOUT, b"b")]) == 0
    assert lines == ["a", "c", "b"]


def test_a_batch_is_one_log_record_with_every_line_tagged(caplog: pytest.LogCaptureFixture) -> None:
    tail = OutputTail(action(), logging.getLogger("test.output"), keep=3)
    with caplog.at_level(logging.INFO, logger="test.output"):
        tail.write_lines(["1", "2", "3", "4"])
        tail("5")
    tag = "wf/task/disk wipe/now | "
    assert [record.getMessage() for record in caplog.records] == [
        "\n".join(tag + line for line in ["1", "2", "3", "4"]),
        tag + "5",
    ]
    assert list(tail.lines) == ["3", "4", "5"]


def test_output_kept_out_of_the_log_still_keeps_the_tail(caplog: pytest.LogCaptureFixture) -> None:
    tail = OutputTail(action(), logging.getLogger("test.quiet"), keep=2, to_log=False)
    with caplog.at_level(logging.DEBUG, logger="test.quiet"):
        tail.write_lines(["a", "b", "c"])
    assert caplog.records == [] and list(tail.lines) == ["b", "c"]


def test_frames_handed_off_arrive_in_order_in_fewer_larger_batches() -> None:
    batches: list[tuple[int, int]] = []
    lines: list[str] = []
    output = OutputLines(lambda batch: (batches.append((len(batch), 0)), lines.extend(batch)))
    frames = [(STDOUT, f"{n}\n".encode()) for n in range(20_000)] + [(STDERR, b"last\n")]
    output.feed_all(frames)
    assert lines == [str(n) for n in range(20_000)] + ["last"]
    assert len(batches) < 20_000 / 10, "frames queued meanwhile are joined into one batch"


def test_a_full_handoff_makes_the_reader_wait_and_loses_nothing() -> None:
    release = threading.Event()
    fed: list[bytes] = []

    def slow_feed(stream: int, payload: bytes) -> None:
        release.wait(5)
        fed.append(payload)

    handoff = Handoff(slow_feed, limit=10)
    handoff.put(STDOUT, b"0123456789")  # taken at once by the handing-on thread, which then waits
    time.sleep(0.1)
    handoff.put(STDOUT, b"abcdefghij")  # fills the queue
    blocked = threading.Thread(target=handoff.put, args=(STDOUT, b"KLMNOPQRST"))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive(), "the reader waits while the queue is full"
    release.set()
    blocked.join(5)
    handoff.finish()
    assert b"".join(fed) == b"0123456789abcdefghijKLMNOPQRST"


def test_a_failing_consumer_is_reported_to_the_reader() -> None:
    def broken(stream: int, payload: bytes) -> None:
        raise OSError("log disk full")

    handoff = Handoff(broken, limit=4)
    for _ in range(10):  # never blocks for good: the failure releases the reader
        handoff.put(STDOUT, b"xxxx")
    with pytest.raises(OSError, match="log disk full"):
        handoff.finish()
