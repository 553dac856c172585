"""The podman plugin's pure parts: image names, the container spec, frames, limits, sockets."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tinklet_podman.images import is_local_only, resolve_image
from tinklet_podman.output import STDERR, STDOUT, FrameDecoder, OutputLines, read_frames
from tinklet_podman.service import first_answering, socket_url, usual_sockets
from tinklet_podman.spec import Mount, Ulimit, container_spec
from tinklet_podman.ulimits import is_rlimit_error, own_limits, process_limits

from tinklet_core.model import Action, Volume
from tinklet_core.plugins import describe_plugins, load_plugins
from tinklet_core.runtime import Privilege


def frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame as Podman sends it."""
    return struct.pack(">BxxxL", stream, len(payload)) + payload


class Trickle(io.BytesIO):
    """A reader that hands out at most 3 bytes per read, like a slow socket."""

    def read1(self, size: int | None = -1, /) -> bytes:
        return super().read1(min(3, size if size and size > 0 else 3))


@pytest.mark.parametrize(
    ("image", "local", "expected"),
    [
        ("tinklet/busybox:latest", {"localhost/tinklet/busybox:latest"}, "localhost/tinklet/busybox:latest"),
        ("tinklet/busybox:latest", set(), "docker.io/tinklet/busybox:latest"),
        ("busybox", set(), "docker.io/library/busybox"),
        ("busybox", {"localhost/busybox"}, "localhost/busybox"),
        ("quay.io/org/tool:1", {"localhost/quay.io/org/tool:1"}, "quay.io/org/tool:1"),
        ("127.0.0.1:5000/x", set(), "127.0.0.1:5000/x"),
        ("localhost/x:2", set(), "localhost/x:2"),
        ("docker.io/library/alpine@sha256:abc", set(), "docker.io/library/alpine@sha256:abc"),
    ],
)
def test_resolve_image(image: str, local: set[str], expected: str) -> None:
    assert resolve_image(image, local.__contains__) == expected


def test_only_localhost_images_are_local_only() -> None:
    assert is_local_only("localhost/tinklet/busybox:latest")
    assert not is_local_only("localhost:5000/tinklet/busybox:latest")
    assert not is_local_only("docker.io/library/busybox")


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


def test_container_spec_maps_the_action() -> None:
    spec = container_spec(
        action(
            command=("sh", "-c", "echo"),
            env=(("A", "x y=z"),),
            volumes=(Volume("/dev", "/dev"), Volume("cache", "/cache", read_only=True)),
            pid_namespace="host",
            network_namespace="host",
        ),
        "localhost/img",
        Privilege.PRIVILEGED,
        "abc123",
        (Ulimit("nofile", 1, 2),),
    )
    assert spec.name == "tinklet-disk-wipe-now-abc123"
    assert spec.image == "localhost/img"
    assert spec.command == ("sh", "-c", "echo")
    assert spec.environment == (("A", "x y=z"),)
    assert dict(spec.labels) == action().labels()
    assert spec.mounts == (Mount("/dev", "/dev", False, True), Mount("cache", "/cache", True, False))
    assert spec.privileged and spec.cap_add == ()
    assert (spec.pid_mode, spec.network_mode) == ("host", "host")
    assert spec.ulimits == (Ulimit("nofile", 1, 2),)


def test_container_spec_privilege_levels_and_private_namespaces() -> None:
    all_caps = container_spec(action(pid_namespace="other"), "i", Privilege.ALL_CAPS, "s")
    assert not all_caps.privileged and all_caps.cap_add == ("ALL",)
    assert (all_caps.pid_mode, all_caps.network_mode) == ("", "")
    none = container_spec(action(), "i", Privilege.NONE, "s")
    assert not none.privileged and none.cap_add == ()


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


def test_output_lines_keep_streams_apart() -> None:
    lines: list[str] = []
    output = OutputLines(lines.append)
    output.feed_all([(STDOUT, b"out "), (STDERR, b"err\n"), (STDOUT, b"line\nlast")])
    assert lines == ["err", "out line", "last"]
    assert output.delivered == {STDOUT: 13, STDERR: 4}
    assert output.emitted == 3


def test_catch_up_emits_only_what_was_missed_and_completes_a_cut_line() -> None:
    def broken_stream() -> Iterator[tuple[int, bytes]]:
        yield STDOUT, b"1\n2\n3"
        yield STDERR, b"e1\n"
        raise ConnectionResetError("the attach stream broke")

    lines: list[str] = []
    output = OutputLines(lines.append)
    with pytest.raises(ConnectionResetError):
        output.feed_all(broken_stream())
    assert lines == ["1", "2", "e1"], "the cut line is held back"
    complete = [(STDOUT, b"1\n2\n"), (STDERR, b"e1\ne2\n"), (STDOUT, b"3"), (STDOUT, b"4\n5")]
    assert output.catch_up(complete) == 3
    assert lines == ["1", "2", "e1", "e2", "34", "5"]


def test_catch_up_after_a_complete_stream_emits_nothing() -> None:
    lines: list[str] = []
    output = OutputLines(lines.append)
    output.feed_all([(STDOUT, b"a\nb"), (STDERR, b"c\n")])
    assert output.catch_up([(STDOUT, b"a\n"), (STDERR, b"c\n"), (STDOUT, b"b")]) == 0
    assert lines == ["a", "c", "b"]


def test_process_limits_are_read_from_proc(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max processes             32768                32768                processes \n"
        "Max open files            1024                 unlimited            files     \n"
    )
    assert process_limits(42, proc=tmp_path) == (
        Ulimit("nofile", 1024, 2**64 - 1),
        Ulimit("nproc", 32768, 32768),
    )
    assert process_limits(43, proc=tmp_path) is None


def test_own_limits_cap_nproc_at_pid_max(tmp_path: Path) -> None:
    pid_max = tmp_path / "pid_max"
    pid_max.write_text("100\n")
    limits = {limit.name: limit for limit in own_limits(pid_max)}
    assert limits["nproc"].hard <= 100 and limits["nproc"].soft <= 100
    assert limits["nofile"].hard >= limits["nofile"].soft > 0


def test_rlimit_errors_are_recognised() -> None:
    message = "runc create failed: error setting rlimit type 7: operation not permitted"
    assert is_rlimit_error(message)
    assert not is_rlimit_error("executable file not found in $PATH")


def test_socket_urls_and_the_usual_order() -> None:
    assert socket_url("/run/x.sock") == "unix:///run/x.sock"
    assert socket_url("unix:///run/x.sock") == "unix:///run/x.sock"
    assert socket_url("tcp://127.0.0.1:8080") == "tcp://127.0.0.1:8080"
    assert usual_sockets("/run/user/7") == [
        "unix:///run/user/7/podman/podman.sock",
        "unix:///run/podman/podman.sock",
    ]
    assert usual_sockets(None) == ["unix:///run/podman/podman.sock"]


def test_first_answering_skips_absent_and_silent_sockets(tmp_path: Path) -> None:
    silent, good = tmp_path / "silent.sock", tmp_path / "good.sock"
    silent.touch()
    good.touch()
    urls = [f"unix://{tmp_path / 'absent.sock'}", f"unix://{silent}", f"unix://{good}"]
    asked: list[str] = []

    def probe(url: str) -> str | None:
        asked.append(url)
        return None if url.endswith("good.sock") else "Connection refused"

    assert first_answering(urls, probe) == f"unix://{good}"
    assert asked == urls[1:], "a socket file that does not exist is not even asked"


def test_the_plugin_lists_without_importing_podman_py() -> None:
    code = (
        "import sys; from tinklet_core.plugins import load_plugins, describe_plugins;"
        "infos = describe_plugins(load_plugins());"
        "print([i.hooks for i in infos if 'podman' in i.runtimes]);"
        "print('podman' in sys.modules, 'podman.client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "tinklet_execute_action" in out
    assert out.splitlines()[-1] == "False False"


def test_the_spec_offers_the_options() -> None:
    infos = [info for info in describe_plugins(load_plugins()) if "podman" in info.runtimes]
    assert infos and infos[0].distribution == "tinklet-podman"
    from tinklet_podman import tinklet_runtimes

    (spec,) = tinklet_runtimes()
    assert [option.name for option in spec.options] == ["podman-socket", "xdg-runtime-dir", "podman-binary"]
