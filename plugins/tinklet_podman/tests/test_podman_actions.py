"""The podman runtime runs actions like the docker one: real containers on a real Podman."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from podman_support import execute, leftovers, make_action, podman
from tinklet_podman.runtime import PodmanRuntime

from tinklet_core.errors import ActionInterrupted
from tinklet_core.model import State, Volume
from tinklet_core.runtime import Privilege, PullPolicy, RuntimeSettings


def test_echo_output_reaches_the_worker(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["sh", "-c", "echo one; echo two >&2; echo three"]))
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    assert run.outcome.exit_code == 0
    assert sorted(run.lines) == ["one", "three", "two"]
    assert run.lines.index("one") < run.lines.index("three")


def test_env_values_keep_spaces_and_equals(runtime: PodmanRuntime) -> None:
    env = (("GREETING", "hello big world"), ("EQUATION", "a=b=c"), ("EMPTY", ""))
    action = make_action(
        ["sh", "-c", 'echo "[$GREETING]"; echo "[$EQUATION]"; echo "[${EMPTY-unset}]"'], env=env
    )
    run = execute(runtime, action)
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    assert run.lines == ["[hello big world]", "[a=b=c]", "[]"]


def test_read_only_bind_mount(runtime: PodmanRuntime, tmp_path: Path) -> None:
    source = tmp_path / "answer.txt"
    source.write_text("forty-two\n")
    volume = Volume(str(source), "/mnt/answer.txt", read_only=True)
    script = (
        "cat /mnt/answer.txt; (echo changed > /mnt/answer.txt) 2>/dev/null && echo WRITABLE || echo READONLY"
    )
    run = execute(runtime, make_action(["sh", "-c", script], volumes=(volume,)))
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    assert run.lines[0] == "forty-two"
    assert run.lines[-1] == "READONLY"
    assert source.read_text() == "forty-two\n"


def test_writable_bind_mount_and_named_volume(runtime: PodmanRuntime, tmp_path: Path) -> None:
    name = f"tinklet-test-{time.monotonic_ns()}"
    volumes = (Volume(str(tmp_path), "/host"), Volume(name, "/named"))
    try:
        run = execute(
            runtime,
            make_action(
                ["sh", "-c", "echo written > /host/out.txt; echo kept > /named/f; cat /named/f"],
                volumes=volumes,
            ),
        )
        assert run.outcome is not None and run.outcome.state is State.SUCCESS, run.outcome
        assert (tmp_path / "out.txt").read_text() == "written\n"
        assert run.lines == ["kept"]
        assert name in podman("volume", "ls", "--format", "{{.Name}}").split()
    finally:
        podman("volume", "rm", "-f", name, check=False)


def test_non_zero_exit_fails_with_the_code(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["sh", "-c", "echo about to fail; exit 3"]))
    assert run.outcome is not None and run.outcome.state is State.FAILED
    assert run.outcome.exit_code == 3
    assert run.outcome.reason == "exit code 3"
    assert run.lines == ["about to fail"]


def test_bad_command_fails_with_podmans_words(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["/no/such/program"]))
    assert run.outcome is not None and run.outcome.state is State.FAILED
    assert "/no/such/program" in run.outcome.reason
    assert "\n" not in run.outcome.reason


def test_deadline_kills_and_reports_timeout(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["sleep", "30"], timeout=2), deadline_in=2)
    assert run.outcome is not None and run.outcome.state is State.TIMEOUT
    assert run.outcome.reason == "timed out after 2s"
    assert run.seconds < 4
    assert leftovers() == []


def test_shutdown_stops_and_removes_the_container(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["sleep", "60"]), cancel_after=1.0)
    assert isinstance(run.error, ActionInterrupted)
    assert run.seconds < 10
    assert leftovers() == []


def test_privileged_sees_host_devices(runtime: PodmanRuntime) -> None:
    privileged = execute(runtime, make_action(["ls", "/dev"]))
    plain = execute(runtime, make_action(["ls", "/dev"]), settings=RuntimeSettings(privilege=Privilege.NONE))
    assert privileged.outcome is not None and privileged.outcome.state is State.SUCCESS
    assert plain.outcome is not None and plain.outcome.state is State.SUCCESS
    extra = set(privileged.lines) - set(plain.lines)
    assert extra, "a privileged container sees the host's devices"
    assert extra <= set(os.listdir("/dev"))


def test_all_caps_grants_capabilities_without_host_devices(runtime: PodmanRuntime) -> None:
    script = "grep CapEff /proc/self/status; ls /dev | wc -l"
    all_caps = execute(
        runtime, make_action(["sh", "-c", script]), settings=RuntimeSettings(privilege=Privilege.ALL_CAPS)
    )
    plain = execute(
        runtime, make_action(["sh", "-c", script]), settings=RuntimeSettings(privilege=Privilege.NONE)
    )
    assert all_caps.outcome is not None and all_caps.outcome.state is State.SUCCESS
    assert plain.outcome is not None and plain.outcome.state is State.SUCCESS
    assert int(all_caps.lines[0].split()[1], 16) > int(plain.lines[0].split()[1], 16)
    assert all_caps.lines[1] == plain.lines[1], "no host devices without the privileged flag"


def test_host_pid_and_network_namespaces(runtime: PodmanRuntime) -> None:
    script = "ls -l /proc/self/ns/pid /proc/self/ns/net"
    host = execute(runtime, make_action(["sh", "-c", script], pid_namespace="host", network_namespace="host"))
    private = execute(runtime, make_action(["sh", "-c", script]))
    assert host.outcome is not None and host.outcome.state is State.SUCCESS
    assert private.outcome is not None and private.outcome.state is State.SUCCESS
    ours = {os.readlink("/proc/self/ns/pid"), os.readlink("/proc/self/ns/net")}
    assert {line.split(" -> ")[-1] for line in host.lines} == ours
    assert not {line.split(" -> ")[-1] for line in private.lines} & ours


def test_labels_identify_the_action(runtime: PodmanRuntime) -> None:
    action = make_action(["sh", "-c", "sleep 2"])
    seen: list[str] = []

    def look() -> None:
        time.sleep(1.0)
        seen.extend(
            podman(
                "ps", "--filter", f"label=tinklet.action={action.action_id}", "--format", "{{.Labels}}"
            ).split("\n")
        )

    looker = threading.Thread(target=look)
    looker.start()
    run = execute(runtime, action)
    looker.join()
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    labels = " ".join(seen)
    for key, value in action.labels().items():
        assert f"{key}:{value}" in labels


def test_100k_lines_arrive_complete_in_order_exactly_once(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["seq", "1", "100000"]))
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    assert len(run.lines) == 100_000
    assert run.lines == [str(n) for n in range(1, 100_001)]


def test_long_lines_and_an_unterminated_last_line(runtime: PodmanRuntime) -> None:
    script = "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline at the end'"
    run = execute(runtime, make_action(["sh", "-c", script]))
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    assert "".join(run.lines[:-1]) == "x" * 40000
    assert all(len(line) <= 16 * 1024 for line in run.lines)
    assert run.lines[-1] == "no newline at the end"


def test_unqualified_image_runs_the_imported_localhost_image(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["echo", "local"], image="tinklet/busybox:latest"))
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    assert run.lines == ["local"]


def test_missing_image_with_pull_policy_never(runtime: PodmanRuntime) -> None:
    settings = RuntimeSettings(pull_policy=PullPolicy.NEVER)
    run = execute(runtime, make_action(["true"], image="example.invalid/nothing:1"), settings=settings)
    assert run.outcome is not None and run.outcome.state is State.FAILED
    assert "not present" in run.outcome.reason and "never" in run.outcome.reason


def test_failed_pull_is_a_failed_action_with_the_registrys_words(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["true"], image="127.0.0.1:1/nothing:1"))
    assert run.outcome is not None and run.outcome.state is State.FAILED
    assert run.outcome.reason.startswith("image pull failed: ")
    assert "connection refused" in run.outcome.reason


def test_missing_localhost_image_is_never_pulled(runtime: PodmanRuntime) -> None:
    run = execute(runtime, make_action(["true"], image="localhost/tinklet/absent:1"))
    assert run.outcome is not None and run.outcome.state is State.FAILED
    assert "never pulled" in run.outcome.reason


def test_overhead_of_a_true_action(runtime: PodmanRuntime) -> None:
    """A measurement for the report, not a timed assertion: prints the median of ten."""
    runs = [execute(runtime, make_action(["true"])) for _ in range(10)]
    assert all(run.outcome is not None and run.outcome.state is State.SUCCESS for run in runs)
    seconds = sorted(run.seconds for run in runs)
    print(f"\npodman runtime: `true` action, median of 10: {(seconds[4] + seconds[5]) / 2 * 1000:.0f} ms")


def test_lines_a_broken_live_stream_missed_come_from_the_log(
    runtime: PodmanRuntime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The safety net: the attach stream breaks after a few frames, yet every line arrives once."""
    engine = runtime.engine
    attach = engine.attach

    class Breaking:
        """The real attach stream, cut after three frames."""

        def __init__(self, container: str) -> None:
            self.inner = attach(container)

        def __iter__(self) -> Iterator[tuple[int, bytes]]:
            for count, item in enumerate(self.inner, 1):
                yield item
                if count == 3:
                    self.inner.close()
                    raise ConnectionResetError("connection reset by the test")

        def close(self) -> None:
            self.inner.close()

    monkeypatch.setattr(engine, "attach", Breaking)
    # 2.7 MB: more than three of the reader's largest frames (READ_SIZE, 256 KiB) can hold, even
    # when a loaded machine lets the output pile up and each read takes a whole READ_SIZE
    run = execute(runtime, make_action(["seq", "1", "400000"]))
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    assert run.lines == [str(n) for n in range(1, 400_001)]
    assert "missed were read from the container log" in caplog.text


def test_output_is_read_from_conmon_without_the_service_relaying_it(
    runtime: PodmanRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path: a local service's containers are read from conmon's attach socket."""
    engine = runtime.engine
    attach = engine.attach
    streams: list[object] = []

    def recording_attach(container: str) -> object:
        streams.append(attach(container))
        return streams[-1]

    monkeypatch.setattr(engine, "attach", recording_attach)
    script = "seq 1 50000; echo to-stderr >&2; printf 'unterminated'"
    run = execute(runtime, make_action(["sh", "-c", script]))
    assert run.outcome is not None and run.outcome.state is State.SUCCESS
    assert [type(stream).__name__ for stream in streams] == ["ConmonAttachment"]
    # In order per stream (stdout and stderr are separate pipes: no order between them).
    stdout = [line for line in run.lines if line != "to-stderr"]
    assert stdout == [*map(str, range(1, 50_001)), "unterminated"]
    assert run.lines.count("to-stderr") == 1


def test_output_goes_through_the_service_when_conmon_cannot_be_reached(
    runtime: PodmanRuntime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A service in another mount namespace, or a bundle directory tinklet may not open: the
    output is relayed by the service as before, every line of it, and the log says so once."""
    monkeypatch.setattr(runtime.engine, "_bundle_dir", lambda container: str(tmp_path))
    caplog.set_level("INFO", logger="tinklet.podman")
    for _ in range(2):
        run = execute(runtime, make_action(["seq", "1", "20000"]))
        assert run.outcome is not None and run.outcome.state is State.SUCCESS
        assert run.lines == [str(n) for n in range(1, 20_001)]
    relayed = [r.getMessage() for r in caplog.records if "through the Podman service" in r.getMessage()]
    assert len(relayed) == 1 and "No such file or directory" in relayed[0]
