"""How the podman runtime finds Podman, or starts and stops its own service, for real."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from podman_support import (
    AGENT,
    ServiceProcess,
    execute,
    leftovers,
    make_action,
    podman,
    process_alive,
    start_service,
    wait_until,
)
from tinklet_podman.engine import probe
from tinklet_podman.runtime import PodmanRuntime
from tinklet_podman.service import ROOT_SOCKET, PodmanService

from tinklet_core.errors import RuntimeUnavailable
from tinklet_core.model import State
from tinklet_core.runtime import RuntimeSettings


@pytest.fixture
def xdg_service(tmp_path: Path) -> Iterator[ServiceProcess]:
    """A Podman service at ``<tmp>/xdg/podman/podman.sock``, a user's usual location."""
    service = start_service(tmp_path / "xdg" / "podman" / "podman.sock")
    try:
        yield service
    finally:
        service.stop()


def nothing_usual_answers() -> None:
    """Skip when root's usual socket answers: the runtime would (rightly) not start its own."""
    if probe(f"unix://{ROOT_SOCKET}") is None:
        pytest.skip(f"a Podman service answers at {ROOT_SOCKET}; the runtime would rightly use it")


def open_runtime(**options: object) -> PodmanRuntime:
    """The runtime for the test agent, with these options."""
    return PodmanRuntime(RuntimeSettings(agent_id=AGENT, options=options))


def command_line(pid: int) -> str:
    """The command line of process ``pid`` ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def own_tempdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short temporary directory of this test's own as ``tempfile``'s default, so that the
    private directories of runtimes in tests running side by side are not taken for ours."""
    directory = Path(tempfile.mkdtemp(prefix="tk-"))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def private_dirs() -> set[str]:
    """The private socket directories tinklet made in the temporary directory."""
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("tinklet-podman-")}


def test_explicit_socket_wins_over_a_usual_location(
    xdg_service: ServiceProcess,
    podman_service: ServiceProcess,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tinklet.podman")
    runtime = open_runtime(podman_socket=podman_service.url, xdg_runtime_dir=str(tmp_path / "xdg"))
    try:
        assert runtime.url == podman_service.url
        assert runtime.service_pid is None
        assert f"at {podman_service.url} (from --podman-socket)" in caplog.text
    finally:
        runtime.close()
    assert xdg_service.process.poll() is None and podman_service.process.poll() is None, (
        "found services keep running"
    )


def test_explicit_socket_path_without_scheme(podman_service: ServiceProcess) -> None:
    runtime = open_runtime(podman_socket=str(podman_service.socket))
    try:
        assert runtime.url == podman_service.url
    finally:
        runtime.close()


def test_a_service_at_the_users_usual_location_is_found(
    xdg_service: ServiceProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tinklet.podman")
    runtime = open_runtime(xdg_runtime_dir=str(tmp_path / "xdg"))
    try:
        assert runtime.url == xdg_service.url
        assert runtime.service_pid is None
        assert "found at a usual location" in caplog.text
        run = execute(runtime, make_action(["echo", "via xdg"]))
        assert run.outcome is not None and run.outcome.state is State.SUCCESS
        assert run.lines == ["via xdg"]
    finally:
        runtime.close()
    assert xdg_service.process.poll() is None, "a service tinklet did not start is left running"


def test_an_explicit_socket_that_does_not_answer_is_an_error(
    xdg_service: ServiceProcess, tmp_path: Path
) -> None:
    missing = tmp_path / "nobody" / "podman.sock"
    with pytest.raises(RuntimeUnavailable) as caught:
        open_runtime(podman_socket=str(missing), xdg_runtime_dir=str(tmp_path / "xdg"))
    message = str(caught.value)
    assert str(missing) in message and "does not answer" in message
    assert "\n" not in message


def test_without_a_socket_tinklet_starts_and_stops_its_own_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nothing_usual_answers()
    caplog.set_level(logging.INFO, logger="tinklet.podman")
    runtime = open_runtime(xdg_runtime_dir=str(tmp_path / "empty"))
    pid = runtime.service_pid
    try:
        assert pid is not None and process_alive(pid)
        socket = Path(runtime.url.removeprefix("unix://"))
        assert socket.exists()
        assert f"started by tinklet (pid {pid})" in caplog.text
        run = execute(runtime, make_action(["echo", "daemonless"]))
        assert run.outcome is not None and run.outcome.state is State.SUCCESS
        assert run.lines == ["daemonless"]
    finally:
        runtime.close()
        runtime.close()  # twice is harmless
    assert not process_alive(pid), "the service tinklet started is still running"
    assert not socket.exists() and not socket.parent.exists()
    assert "stopped the podman system service" in caplog.text


@pytest.mark.usefixtures("own_tempdir")
def test_a_missing_podman_binary_is_a_one_line_error(tmp_path: Path) -> None:
    nothing_usual_answers()
    before = private_dirs()
    with pytest.raises(RuntimeUnavailable) as caught:
        open_runtime(xdg_runtime_dir=str(tmp_path / "empty"), podman_binary="/nonexistent/podman")
    message = str(caught.value)
    assert "/nonexistent/podman" in message and "not found" in message
    assert "\n" not in message
    assert private_dirs() == before, "the private socket directory was left behind"


def test_a_service_that_exits_reports_its_stderr(tmp_path: Path) -> None:
    fake = tmp_path / "fake-podman"
    fake.write_text("#!/bin/sh\necho 'Error: cannot listen: the sky is falling' >&2\nexit 125\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeUnavailable) as caught:
        PodmanService.start(str(fake), probe)
    message = str(caught.value)
    assert "exited with status 125" in message
    assert "the sky is falling" in message
    assert "\n" not in message


@pytest.mark.usefixtures("own_tempdir")
def test_a_service_that_never_answers_is_stopped(tmp_path: Path) -> None:
    marker = "987.654"
    fake = tmp_path / "fake-podman"
    fake.write_text(f"#!/bin/sh\necho 'starting slowly' >&2\nexec sleep {marker}\n")
    fake.chmod(0o755)
    before = private_dirs()
    with pytest.raises(RuntimeUnavailable) as caught:
        PodmanService.start(str(fake), probe, timeout=1.0)
    assert "did not answer within 1 s" in str(caught.value)
    assert "starting slowly" in str(caught.value)
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in command_line(int(pid))]
    assert private_dirs() == before


def test_a_factory_failing_half_way_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nothing_usual_answers()
    seen: list[int] = []

    def broken(self: PodmanRuntime, agent_id: str) -> None:
        assert self.service_pid is not None
        seen.append(self.service_pid)
        raise RuntimeError("broken half-way")

    monkeypatch.setattr(PodmanRuntime, "_remove_leftovers", broken)
    with pytest.raises(RuntimeError, match="broken half-way"):
        open_runtime(xdg_runtime_dir=str(tmp_path / "empty"))
    assert seen and not process_alive(seen[0])


def test_the_service_dies_with_a_killed_tinklet(tmp_path: Path) -> None:
    nothing_usual_answers()
    script = textwrap.dedent(
        f"""
        import time
        from tinklet_core.runtime import RuntimeSettings
        from tinklet_podman.runtime import PodmanRuntime
        runtime = PodmanRuntime(RuntimeSettings(options={{"xdg_runtime_dir": {str(tmp_path)!r}}}))
        print(runtime.service_pid, runtime.url, flush=True)
        time.sleep(120)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    pid_text, url = child.stdout.readline().split()
    pid = int(pid_text)
    private_dir = Path(url.removeprefix("unix://")).parent
    try:
        assert process_alive(pid)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert wait_until(lambda: not process_alive(pid), 15), "the service outlived a killed tinklet"
    finally:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(private_dir, ignore_errors=True)  # a killed tinklet cannot clean up


def test_works_without_the_test_containers_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Podman's default ulimits cannot be set in this sandbox; the runtime retries with limits
    the service can apply. (Needs runc as Podman's default OCI runtime: no crun installed.)"""
    nothing_usual_answers()
    if shutil.which("crun") is not None:
        pytest.skip("crun is installed: without the test config Podman would pick it, and it fails here")
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    runtime = open_runtime(xdg_runtime_dir=str(tmp_path / "empty"))
    try:
        first = execute(runtime, make_action(["sh", "-c", "echo first; ulimit -n"]))
        second = execute(runtime, make_action(["echo", "second"]))
    finally:
        runtime.close()
    assert first.outcome is not None and first.outcome.state is State.SUCCESS, first.outcome
    assert first.lines[0] == "first"
    assert second.outcome is not None and second.outcome.state is State.SUCCESS, second.outcome
    assert leftovers() == []


def test_leftovers_of_this_agent_are_removed_at_start(
    podman_service: ServiceProcess, caplog: pytest.LogCaptureFixture
) -> None:
    agent, other = f"{AGENT}-crashed", f"{AGENT}-other"
    created = {}
    for owner in (agent, other):
        labels = ["--label", "tinklet.action=old", "--label", f"tinklet.agent={owner}"]
        name = f"tinklet-old-{owner}-{time.monotonic_ns()}"
        podman("create", "--name", name, *labels, "localhost/tinklet/busybox:latest", "true")
        created[owner] = name
    caplog.set_level(logging.INFO, logger="tinklet.podman")
    try:
        runtime = PodmanRuntime(
            RuntimeSettings(agent_id=agent, options={"podman_socket": podman_service.url})
        )
        try:
            assert created[agent] not in leftovers(agent)
            assert created[other] in leftovers(other), "another agent's containers are not ours to remove"
            assert runtime.leftovers() == []
            assert (
                f"removed container {created[agent]} left by an earlier run for agent {agent}" in caplog.text
            )
        finally:
            runtime.close()
    finally:
        for name in created.values():  # one by one: `podman rm -f A B` stops at a missing A
            podman("rm", "-f", name, check=False)


def test_leftovers_lists_tinklet_containers(podman_service: ServiceProcess) -> None:
    labels = ["--label", "tinklet.action=listed", "--label", f"tinklet.agent={AGENT}"]
    container = podman(
        "create", "--name", "tinklet-listed-test", *labels, "localhost/tinklet/busybox:latest", "true"
    )
    try:
        runtime = PodmanRuntime(RuntimeSettings(options={"podman_socket": podman_service.url}))
        try:
            assert "tinklet-listed-test" in runtime.leftovers()
        finally:
            runtime.close()
    finally:
        podman("rm", "-f", container.strip(), check=False)
