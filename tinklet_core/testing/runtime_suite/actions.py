"""The behaviour suite's single actions, run through the hook on a runtime opened in-process:
output, env, mounts, exit codes, deadlines, shutdown, labels, privilege, pulls and the action's
own failure files."""

from __future__ import annotations

import os
import random
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from tinklet_core.action_failure import CONTAINER_DIR
from tinklet_core.errors import ActionInterrupted
from tinklet_core.model import RegistryCredentials, State, Volume
from tinklet_core.runtime import Privilege, PullPolicy, Runtime
from tinklet_core.testing.pytest_plugin import not_applicable
from tinklet_core.testing.runtime_suite.base import SuiteBase, make_action
from tinklet_core.worker import failure_message

CAP_SYS_ADMIN = 21
SUITE_LOGIN = RegistryCredentials("suite-registry", "suite-user", "suite-password")


def private_loopback_address() -> str:
    """A random loopback address other than ``127.0.0.1`` (all of 127.0.0.0/8 is the host's own).

    Nothing else on the host talks to it: a client elsewhere that retries a ``127.0.0.1`` port
    after its server closed (another test, in parallel) cannot land on a listener bound here, even
    when the kernel hands out that port number again. Engines treat 127.0.0.0/8 registries as
    local (insecure allowed, never proxied) just like ``127.0.0.1``.
    """
    rng = random.SystemRandom()
    return f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(2, 255)}"


class SilentRegistry:
    """A loopback port that counts the connections made to it: an image registry that never
    answers, so a pull from ``HOST:PORT/…`` fails fast and the suite can see whether one was tried.
    It listens on an address of its own (:func:`private_loopback_address`), so every connection it
    counts was made to this registry's name."""

    def __init__(self) -> None:
        address = private_loopback_address()
        self._socket = socket.create_server((address, 0))
        self._socket.settimeout(0.1)
        self.host = f"{address}:{self._socket.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join(2)
        self._socket.close()


class SingleActionTests(SuiteBase):
    """Single actions through the hook (tests inherited by :class:`RuntimeBehaviourSuite`)."""

    def test_output_is_streamed_line_by_line(self, runtime: Runtime) -> None:
        outcome, lines = self.execute(
            make_action(self.image, ["sh", "-c", "echo one; echo two >&2; echo three"])
        )
        assert outcome.state is State.SUCCESS
        assert sorted(lines) == ["one", "three", "two"]
        assert lines.index("one") < lines.index("three")

    def test_env_values_keep_spaces_and_equals(self, runtime: Runtime) -> None:
        env = (("GREETING", "hello big world"), ("EQUATION", "a=b=c"))
        outcome, lines = self.execute(
            make_action(self.image, ["sh", "-c", 'echo "[$GREETING]"; echo "[$EQUATION]"'], env=env)
        )
        assert outcome.state is State.SUCCESS
        assert lines == ["[hello big world]", "[a=b=c]"]

    def test_read_only_bind_mount(self, runtime: Runtime, tmp_path: Path) -> None:
        if not self.host_volumes:
            not_applicable(f"{self.runtime_name} does not mount host paths by default")
        source = tmp_path / "answer.txt"
        source.write_text("forty-two\n")
        volume = Volume(str(source), "/mnt/answer.txt", read_only=True)
        write = "(echo changed > /mnt/answer.txt) 2>/dev/null"
        script = f"cat /mnt/answer.txt; {write} && echo WRITABLE || echo READONLY"
        outcome, lines = self.execute(make_action(self.image, ["sh", "-c", script], volumes=(volume,)))
        assert outcome.state is State.SUCCESS
        assert lines[0] == "forty-two"
        assert lines[-1] == "READONLY"
        assert source.read_text() == "forty-two\n"

    def test_non_zero_exit_fails_with_the_code(self, runtime: Runtime) -> None:
        outcome, lines = self.execute(make_action(self.image, ["sh", "-c", "echo about to fail; exit 3"]))
        assert outcome.state is State.FAILED
        assert outcome.exit_code == 3
        assert "exit code 3" in outcome.reason
        assert lines == ["about to fail"]

    def test_deadline_kills_and_reports_timeout(self, runtime: Runtime) -> None:
        started = time.monotonic()
        outcome, _lines = self.execute(make_action(self.image, ["sleep", "30"], timeout=2), deadline_in=2)
        assert outcome.state is State.TIMEOUT
        elapsed = time.monotonic() - started
        # the 2 s deadline, not the action's own 30 s: as in the worker-level test, 8 s beyond it
        # cover creating, killing and removing the container while other test files run
        assert elapsed < 2 + 8 + self.startup_allowance(), f"TIMEOUT came after {elapsed:.1f}s"

    def test_shutdown_stops_the_action(self, runtime: Runtime) -> None:
        started = time.monotonic()
        with pytest.raises(ActionInterrupted):
            self.execute(make_action(self.image, ["sleep", "60"]), cancel_after=1.0)
        assert time.monotonic() - started < 10

    def test_nothing_survives_shutdown(self, runtime: Runtime, tmp_path: Path) -> None:
        """After shutdown stops an action, none of its processes runs on and nothing it made
        is left (a runtime that only kills its client, or only the first process, fails)."""
        beat = tmp_path / "beat"
        script = f"i=0; while true; do i=$((i+1)); echo $i > {beat}; sleep 0.2; done"
        volumes = (Volume(str(tmp_path), str(tmp_path)),) if self.host_volumes else ()
        action = make_action(self.image, ["sh", "-c", f"({script}) & {script}"], volumes=volumes)
        started = (lambda: beat.exists()) if self.host_volumes else (lambda: bool(self.leftovers()))
        with pytest.raises(ActionInterrupted):
            self.execute(action, cancel_when=started)
        assert self.leftovers() == [], "shutdown must remove what the action ran in"
        if self.host_volumes:
            before = beat.read_text()
            time.sleep(1.0)
            assert beat.read_text() == before, "a process of the action still runs after shutdown"

    def test_a_running_action_is_labelled(self, runtime: Runtime) -> None:
        """What runs an action carries the tinklet labels, so a restarted worker finds it."""
        seen: list[list[str]] = []

        def labelled() -> bool:
            seen.append(self.leftovers())
            return bool(seen[-1])

        with pytest.raises(ActionInterrupted):
            self.execute(make_action(self.image, ["sleep", "60"]), cancel_when=labelled)
        assert seen and seen[-1], "no object labelled for the action was found while it ran"

    def test_privilege_is_the_configured_one(self) -> None:
        script = ["sh", "-c", "grep CapEff /proc/self/status"]
        for privilege, admin in ((self.privilege, True), (Privilege.NONE, False)):
            with self.opened(privilege=privilege):
                outcome, lines = self.execute(make_action(self.image, script))
            assert outcome.state is State.SUCCESS, outcome
            caps = int(lines[-1].split()[-1], 16)
            assert bool(caps & (1 << CAP_SYS_ADMIN)) is admin, f"{privilege.value}: CapEff {lines[-1]}"

    def test_pull_never_does_not_pull(self) -> None:
        registry = SilentRegistry()
        try:
            with self.opened(pull_policy=PullPolicy.NEVER):
                outcome, _ = self.execute(make_action(f"{registry.host}/tinklet-suite/absent:1", ["true"]))
        finally:
            registry.close()
        assert outcome.state is State.FAILED
        assert registry.connections == 0, "--pull never must not contact the registry"

    def test_a_missing_image_is_pulled_with_the_registrys_credentials(self) -> None:
        registry = SilentRegistry()
        image = f"{registry.host}/tinklet-suite/absent:1"
        try:
            with self.opened(pull_policy=PullPolicy.MISSING):
                outcome, _ = self.execute(make_action(image, ["true"]), login=SUITE_LOGIN)
        finally:
            registry.close()
        assert outcome.state is State.FAILED
        if self.pulls_from_registries:
            assert registry.connections > 0, "an absent image must be pulled"
        assert image in self.asked_credentials, "the pull must use the registry hook's credentials"

    def test_long_output_arrives_complete_and_in_order(self, runtime: Runtime) -> None:
        outcome, lines = self.execute(make_action(self.image, ["seq", "1", "50000"]))
        assert outcome.state is State.SUCCESS
        assert lines == [str(n) for n in range(1, 50001)]

    def test_host_pid_namespace(self, runtime: Runtime) -> None:
        count = "ls /proc 2>/dev/null | grep -c '^[0-9]'"  # (a process may end while ls reads /proc)
        action = make_action(self.image, ["sh", "-c", count], pid_namespace="host")
        outcome, lines = self.execute(action)
        if not self.host_namespaces:
            assert outcome.state is State.FAILED
            assert "host" in outcome.reason
            return
        assert outcome.state is State.SUCCESS
        assert int(lines[-1]) > 5, "a private pid namespace shows only a couple of processes"

    def test_failure_reason_and_message_come_first(self, runtime: Runtime) -> None:
        write = self.write_failure("DiskNotFound", "/dev/sdz does not exist")
        empty = f"cat {CONTAINER_DIR}/* 2>/dev/null | wc -c"  # (Kubernetes: an empty message file)
        script = f"{empty}; echo formatting; {write}; exit 1"
        outcome, lines = self.execute(make_action(self.image, ["sh", "-c", script]))
        assert outcome.state is State.FAILED
        assert lines == ["0", "formatting"], "/tinkerbell must start empty"
        assert outcome.action_message == "/dev/sdz does not exist"
        expected = "/dev/sdz does not exist; exit code 1; last output: 0 | formatting"
        if self.reports_failure_reason:
            assert outcome.action_reason == "DiskNotFound"
            expected = "DiskNotFound: " + expected
        assert failure_message(outcome, lines) == expected

    def test_an_action_writing_no_failure_files_is_reported_as_before(self, runtime: Runtime) -> None:
        outcome, lines = self.execute(make_action(self.image, ["sh", "-c", "echo nothing to say; exit 1"]))
        assert (outcome.state, outcome.action_reason, outcome.action_message) == (State.FAILED, "", "")
        assert failure_message(outcome, lines) == "exit code 1; last output: nothing to say"

    def test_failure_files_are_read_on_timeout_too(self, runtime: Runtime) -> None:
        if not self.reports_failure_on_timeout:
            not_applicable(f"{self.runtime_name} reports TIMEOUT before the action's files can be read")
        write = self.write_failure("DiskBusy", "waiting for /dev/sda to settle")
        action = make_action(self.image, ["sh", "-c", f"{write}; sleep 30"], timeout=2)
        outcome, lines = self.execute(action, deadline_in=2)
        assert outcome.state is State.TIMEOUT
        assert outcome.action_message == "waiting for /dev/sda to settle"
        expected = "waiting for /dev/sda to settle; timed out after 2s"
        if self.reports_failure_reason:
            expected = "DiskBusy: " + expected
        assert failure_message(outcome, lines) == expected

    def test_nothing_of_the_failure_directory_is_left(self, runtime: Runtime) -> None:
        marker = f"left-{uuid.uuid4().hex}"
        script = f"{self.write_failure('Marker', marker)}; echo x > {CONTAINER_DIR}/{marker}; exit 1"
        outcome, _lines = self.execute(make_action(self.image, ["sh", "-c", script]))
        assert outcome.action_message == marker, "the action's files were not read"
        assert left_in_host_temp(marker) == [], "the action's directory was left"


def left_in_host_temp(name: str) -> list[str]:
    """Paths called ``name`` under the host's ``tinklet-*`` temporary directories. Walked with
    ``os.walk``, which passes over a directory that vanishes meanwhile: other tests (a private
    containerd's snapshots, another worker's action) change those directories while this looks."""
    found: list[str] = []
    for top in Path(tempfile.gettempdir()).glob("tinklet-*"):
        for directory, subdirectories, files in os.walk(top):
            entries = (*subdirectories, *files)
            found.extend(os.path.join(directory, entry) for entry in entries if entry == name)
    return found

