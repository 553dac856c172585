"""The runtime behaviour suite: what every runtime plugin must do, written once.

A runtime plugin's tests subclass :class:`RuntimeBehaviourSuite` (pytest collects the
inherited tests) and say how to reach their runtime::

    class TestDockerBehaviour(RuntimeBehaviourSuite):
        runtime_name = "docker"
        image = "tinklet/busybox:latest"

        def leftovers(self) -> list[str]:
            ...  # ids of objects labelled tinklet.action that still exist

The first group of tests opens the runtime through the plugin manager (as ``tinklet --runtime``
does) and runs single actions: output, env, mounts, exit codes, deadlines, shutdown (and that no
process or container survives it), labels, privilege, pull policy and registry credentials; the
second runs ``python -m tinklet_core`` as a real worker process against the in-process test Tink
server (:mod:`tinklet_core.testing.tink_server`) and against a workflow file. The image must be
busybox-like: ``sh``, ``echo``, ``sleep``, ``cat``, ``env``, ``ls``, ``seq``, ``grep``.

Installing tinklet also gives the same suite without writing a class: ``pytest
--tinklet-runtime NAME`` (see :mod:`tinklet_core.testing.pytest_plugin`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tinklet_core.action_failure import CONTAINER_DIR
from tinklet_core.errors import ActionInterrupted
from tinklet_core.model import Action, Outcome, RegistryCredentials, State, Volume
from tinklet_core.plugins import find_runtime, load_plugins, open_runtime
from tinklet_core.proxy import ProxySettings
from tinklet_core.runtime import ActionContext, Privilege, PullPolicy, Runtime, RuntimeSettings
from tinklet_core.testing.pytest_plugin import LOCAL_AGENT_GROUP, not_applicable
from tinklet_core.testing.recording_proxy import RecordingHttpServer
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.worker import failure_message
from tinklet_core.workflow import parse_workflow

#: Unique per test session: opening a runtime removes its agent's leftovers, so two sessions
#: sharing one daemon must not share an agent id.
AGENT = f"suite-{uuid.uuid4().hex[:8]}"


CAP_SYS_ADMIN = 21
SUITE_LOGIN = RegistryCredentials("suite-registry", "suite-user", "suite-password")


class SilentRegistry:
    """A loopback port that counts the connections made to it: an image registry that never
    answers, so a pull from ``HOST:PORT/…`` fails fast and the suite can see whether one was tried."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.host = f"127.0.0.1:{self._socket.getsockname()[1]}"
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


def make_action(image: str, command: list[str], **fields: Any) -> Action:
    """An action with unique ids, for tests."""
    unique = f"{time.monotonic_ns()}"
    values: dict[str, Any] = {
        "workflow_id": f"wf-{unique}",
        "task_id": "task",
        "action_id": f"action-{unique}",
        "agent_id": AGENT,
        "name": "suite",
        "image": image,
        "command": tuple(command),
    }
    values.update(fields)
    return Action(**values)


class RuntimeBehaviourSuite:
    """Inherit this in a plugin's tests; set ``runtime_name`` and ``image``; define ``leftovers``."""

    runtime_name: ClassVar[str] = ""
    image: ClassVar[str] = "tinklet/busybox:latest"
    #: False for runtimes that refuse host namespaces by default (kube without allow-host).
    host_namespaces: ClassVar[bool] = True
    #: False for runtimes without host bind mounts by default.
    host_volumes: ClassVar[bool] = True
    #: False when the runtime's test environment never contacts a registry (a test double
    #: whose nodes pull nothing); the credential request is still checked.
    pulls_from_registries: ClassVar[bool] = True
    #: False when only ``/tinkerbell/failure-message`` comes back from the action, not
    #: ``failure-reason`` (Kubernetes with its failure-reason helper turned off: a container has
    #: one termination message).
    reports_failure_reason: ClassVar[bool] = True
    #: False when a TIMEOUT is reported before the killed action's files can be read (a
    #: runtime that cannot wait for the killed action's final state).
    reports_failure_on_timeout: ClassVar[bool] = True
    #: True when the runtime's image pulls follow tinklet's proxy settings (a Podman service
    #: tinklet starts), False when someone else's settings decide (a running dockerd).
    pulls_through_proxy: ClassVar[bool] = False

    def plugin_modules(self) -> list[str]:
        """Plugin modules to load besides the installed entry points (``-p MODULE``)."""
        return []

    def runtime_options(self) -> dict[str, Any]:
        """Options for the runtime, as ``settings.options`` (override as needed)."""
        return {}

    def cli_options(self) -> list[str]:
        """Extra command-line flags for the worker process (override as needed)."""
        return []

    def core_options(self) -> dict[str, str]:
        """tinklet's own options for every run of the suite, by name (``{"action-privilege":
        "all-caps"}`` on a host that refuses privileged containers): the worker processes get
        them as flags, and the runtime opened in-process gets ``action-privilege``."""
        return {}

    @property
    def privilege(self) -> Privilege:
        """The privilege actions run with: ``action-privilege`` of :meth:`core_options`."""
        return Privilege(self.core_options().get("action-privilege", Privilege.PRIVILEGED.value))

    def _core_flags(self) -> list[str]:
        return [arg for name, value in self.core_options().items() for arg in (f"--{name}", value)]

    def worker_env(self) -> dict[str, str]:
        """Extra environment for the worker process (override as needed)."""
        return {}

    def leftovers(self) -> list[str]:
        """Ids of runtime objects labelled ``tinklet.action`` that still exist."""
        raise NotImplementedError

    # -- fixtures ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def opened(
        self,
        pull_policy: PullPolicy = PullPolicy.MISSING,
        privilege: Privilege | None = None,
        proxy: ProxySettings | None = None,
    ) -> Iterator[Runtime]:
        """The runtime, opened through the plugin manager as ``tinklet --runtime`` would, with
        these settings (``privilege``: :attr:`privilege` unless given); closed afterwards, when
        nothing it made may be left."""
        loaded = load_plugins(extra=self.plugin_modules())
        spec = find_runtime(loaded, self.runtime_name)
        settings = RuntimeSettings(
            agent_id=AGENT,
            pull_policy=pull_policy,
            privilege=privilege or self.privilege,
            proxy=proxy or ProxySettings(),
            options=self.runtime_options(),
        )
        opened = open_runtime(loaded.manager, spec, settings)
        self._manager = loaded.manager
        self._settings = settings
        try:
            yield opened
        finally:
            loaded.manager.unregister(opened)
            opened.close()
        assert self.leftovers() == [], "the runtime left objects behind"

    @pytest.fixture
    def runtime(self) -> Iterator[Runtime]:
        """The runtime with default settings (:attr:`privilege`, pull when missing)."""
        with self.opened() as opened:
            yield opened

    def execute(
        self,
        action: Action,
        deadline_in: float | None = None,
        cancel_after: float | None = None,
        cancel_when: Callable[[], bool] | None = None,
        login: RegistryCredentials | None = None,
    ) -> tuple[Outcome, list[str]]:
        """Run one action through the hook; returns the outcome and the output lines.

        ``cancel_when`` is polled (for at most a minute) and shutdown starts once it is true.
        Images whose credentials the runtime asked for are kept in ``self.asked_credentials``;
        the answer is ``login``.
        """
        lines: list[str] = []
        cancelled = threading.Event()
        self.asked_credentials: list[str] = []
        if cancel_after is not None:
            threading.Timer(cancel_after, cancelled.set).start()
        if cancel_when is not None:
            threading.Thread(target=_set_when, args=(cancel_when, cancelled), daemon=True).start()

        def credentials(image: str) -> RegistryCredentials | None:
            self.asked_credentials.append(image)
            return login

        context = ActionContext(
            action=action,
            settings=self._settings,
            deadline=None if deadline_in is None else time.monotonic() + deadline_in,
            cancelled=cancelled,
            output=lines.append,
            registry_credentials=credentials,
            log=logging.getLogger("tinklet.suite"),
        )
        try:
            outcome = self._manager.hook.tinklet_execute_action(context=context)
        finally:
            cancelled.set()  # stops a cancel_when poller
        return outcome, lines

    # -- single actions ---------------------------------------------------------------------

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
        assert time.monotonic() - started < 4 + self.startup_allowance()

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

    # -- the action's own failure reason and message ----------------------------------------

    def write_failure(self, reason: str, message: str) -> str:
        """Shell that writes the action's failure files as the contract says."""
        return (
            f"printf '%s\\n' '{reason}' > {CONTAINER_DIR}/failure-reason; "
            f"printf '%s\\n' '{message}' > {CONTAINER_DIR}/failure-message"
        )

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
        host_temp = Path(tempfile.gettempdir())
        assert list(host_temp.glob(f"tinklet-*/**/{marker}")) == [], "the action's directory was left"

    # -- proxies -----------------------------------------------------------------------------

    def test_actions_reach_the_web_through_the_proxy(self) -> None:
        """wget in the action goes through ``--http-proxy``; an action's own ``http_proxy``
        wins, and ``NO_PROXY`` reaches the action in both spellings."""
        if not self.host_namespaces:
            not_applicable(f"{self.runtime_name} does not give actions the host's network by default")
        with RecordingHttpServer("proxy") as proxy, RecordingHttpServer("direct") as direct:
            settings = ProxySettings(http=proxy.url, https=proxy.url, no_proxy="direct.test,127.0.0.1")
            fetch = "busybox wget -q -O - http://proxied.test/hello"
            report = "env | grep -i _proxy= | sort"
            with self.opened(proxy=settings):
                outcome, lines = self.execute(
                    make_action(self.image, ["sh", "-c", f"{fetch}; {report}"], network_namespace="host")
                )
                own, own_lines = self.execute(
                    make_action(
                        self.image,
                        ["busybox", "wget", "-q", "-O", "-", f"{direct.url}/own"],
                        network_namespace="host",
                        env=(("http_proxy", ""),),
                    )
                )
        assert outcome.state is State.SUCCESS, lines
        assert lines[0] == "proxy http://proxied.test/hello"
        assert proxy.seen() == ["GET http://proxied.test/hello"], "only the proxied request goes to the proxy"
        for name in ("HTTP_PROXY", "HTTPS_PROXY"):
            assert f"{name}={proxy.url}" in lines and f"{name.lower()}={proxy.url}" in lines
        assert "NO_PROXY=direct.test,127.0.0.1" in lines and "no_proxy=direct.test,127.0.0.1" in lines
        assert own.state is State.SUCCESS, own_lines
        assert own_lines == ["direct /own"] and direct.seen() == ["GET /own"]

    def test_pulls_go_through_the_proxy_where_tinklet_decides(self) -> None:
        if not self.pulls_through_proxy:
            not_applicable(f"{self.runtime_name} pulls with its own proxy settings, not tinklet's")
        image = f"proxied-{uuid.uuid4().hex[:8]}.test/tinklet-suite/absent:1"
        with RecordingHttpServer("proxy") as proxy:
            with self.opened(proxy=ProxySettings(http=proxy.url, https=proxy.url)):
                outcome, _ = self.execute(make_action(image, ["true"]))
            assert outcome.state is State.FAILED
            host = image.split("/")[0]
            assert f"CONNECT {host}:443" in proxy.seen(), outcome.reason

    def startup_allowance(self) -> float:
        """Seconds a runtime may add to a deadline for scheduling (a cluster needs more)."""
        return 0.0

    # -- a worker process against the test Tink server --------------------------------------

    def four_action_workflow(self, tmp_path: Path) -> dict[str, Any]:
        """echo; env with spaces plus a read-only bind mount; exit 3 (saying why in
        ``/tinkerbell``); one more."""
        secret = tmp_path / "motd"
        secret.write_text("mounted file\n")
        second: dict[str, Any] = {
            "name": "env-and-mount",
            "image": self.image,
            "command": ["sh", "-c", 'echo "$MESSAGE"; cat /data/motd'],
            "environment": {"MESSAGE": "hello from tinklet = ok"},
            "volumes": [f"{secret}:/data/motd:ro"],
        }
        if not self.host_volumes:
            second["command"] = ["sh", "-c", 'echo "$MESSAGE"']
            second["volumes"] = []
        explained = self.write_failure("DiskNotFound", "/dev/sdz does not exist")
        return {
            "version": "0.1",
            "name": "suite",
            "tasks": [
                {
                    "name": "provision",
                    "actions": [
                        {"name": "echo", "image": self.image, "command": ["echo", "hello"]},
                        second,
                        {
                            "name": "fail",
                            "image": self.image,
                            "command": ["sh", "-c", f"echo bad; {explained}; exit 3"],
                        },
                        {"name": "never", "image": self.image, "command": ["echo", "must not run"]},
                    ],
                }
            ],
        }

    def worker(self, address: str, *extra: str) -> subprocess.Popen[str]:
        """Start ``tinklet`` as a real process working for ``address``."""
        command = [
            sys.executable, "-m", "tinklet_core",
            *(arg for module in self.plugin_modules() for arg in ("-p", module)),
            "--runtime", self.runtime_name,
            "--tink", address,
            "--identifier", AGENT,
            "--max-backoff", "0.5",
            *self._core_flags(),
            *self.cli_options(),
            *extra,
        ]  # fmt: skip
        env = {**os.environ, "TINKLET_DISABLE_PLUGIN_AUTOLOAD": "", **self.worker_env()}
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    @staticmethod
    def stop_worker(process: subprocess.Popen[str]) -> str:
        """SIGTERM the worker, wait, and return what it logged."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        return output

    def test_worker_runs_a_workflow_until_the_first_failure(self, tmp_path: Path) -> None:
        workflow = parse_workflow(self.four_action_workflow(tmp_path), agent_id=AGENT)
        with TinkServer([workflow], AGENT) as server:
            process = self.worker(server.address)
            try:
                done = server.wait_until(
                    lambda: any(r.state is State.FAILED for r in server.reports), timeout=60
                )
                time.sleep(1.0)  # a worker that wrongly went on would now be on the fourth action
            finally:
                output = self.stop_worker(process)
            assert done, f"no FAILED report; worker said:\n{output}"
            states = [(r.action_name, r.state) for r in server.reports]
            assert states == [
                ("echo", State.RUNNING), ("echo", State.SUCCESS),
                ("env-and-mount", State.RUNNING), ("env-and-mount", State.SUCCESS),
                ("fail", State.RUNNING), ("fail", State.FAILED),
            ], output  # fmt: skip
            failed = server.reports[-1]
            reason = "DiskNotFound: " if self.reports_failure_reason else ""
            assert failed.message == f"{reason}/dev/sdz does not exist; exit code 3; last output: bad"
            assert "hello from tinklet = ok" in output
            if self.host_volumes:
                assert "mounted file" in output
            assert all(action_id != "provision/never" for action_id in server.served)
        assert self.leftovers() == []

    def test_worker_reports_timeout_promptly(self) -> None:
        workflow = parse_workflow(
            {"name": "slow", "tasks": [{"name": "t", "actions": [
                {"name": "sleepy", "image": self.image, "command": ["sleep", "30"], "timeout": 2}]}]},
            agent_id=AGENT,
        )  # fmt: skip
        with TinkServer([workflow], AGENT) as server:
            process = self.worker(server.address)
            try:
                final = server.wait_until(lambda: len(server.reports) >= 2, timeout=60)
            finally:
                output = self.stop_worker(process)
            assert final, output
            running, timeout = server.reports[:2]
            assert (running.state, timeout.state) == (State.RUNNING, State.TIMEOUT), output
            elapsed = (timeout.received_at - running.received_at).total_seconds()
            assert elapsed < 4 + self.startup_allowance(), f"TIMEOUT came {elapsed:.1f}s after RUNNING"
        assert self.leftovers() == []

    def test_worker_retries_a_refused_final_report(self) -> None:
        workflow = parse_workflow(
            {"name": "retry", "tasks": [{"name": "t", "actions": [
                {"name": "once", "image": self.image, "command": ["echo", "ran"]}]}]},
            agent_id=AGENT,
        )  # fmt: skip
        with TinkServer([workflow], AGENT) as server:
            server.refuse_reports(3)
            process = self.worker(server.address)
            try:
                delivered = server.wait_until(lambda: State.SUCCESS in server.states_of("t/once"), timeout=60)
            finally:
                output = self.stop_worker(process)
            assert delivered, output
            assert server.served.count("t/once") == 1, "the action ran more than once"
            assert output.count("| ran") == 1
        assert self.leftovers() == []

    def test_worker_exits_cleanly_on_sigterm(self) -> None:
        workflow = parse_workflow(
            {"name": "long", "tasks": [{"name": "t", "actions": [
                {"name": "long", "image": self.image, "command": ["sleep", "60"]}]}]},
            agent_id=AGENT,
        )  # fmt: skip
        with TinkServer([workflow], AGENT) as server:
            process = self.worker(server.address)
            started = server.wait_until(lambda: State.RUNNING in server.states_of("t/long"), timeout=60)
            time.sleep(1.0)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=10)
            finally:
                output = self.stop_worker(process)
            assert started, output
            assert code == 0, output
            assert time.monotonic() - signalled < 10
            assert not any(state.is_final for state in server.states_of("t/long"))
        assert self.leftovers() == []

    @pytest.mark.xdist_group(LOCAL_AGENT_GROUP)
    def test_workflow_file_gives_the_same_states(self, tmp_path: Path) -> None:
        path = tmp_path / "workflow.yaml"
        path.write_text(yaml.safe_dump(self.four_action_workflow(tmp_path)))
        plugins = [arg for module in self.plugin_modules() for arg in ("-p", module)]
        command = [
            sys.executable,
            "-m",
            "tinklet_core",
            *plugins,
            "run",
            str(path),
            "--runtime",
            self.runtime_name,
        ]
        env: Mapping[str, str] = {**os.environ, **self.worker_env()}
        result = subprocess.run(
            [*command, *self._core_flags(), *self.cli_options()],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr
        lines = [
            line.split()[:2]
            for line in result.stdout.splitlines()
            if line and not line.startswith("workflow")
        ]
        assert lines == [
            ["RUNNING", "provision/echo"], ["SUCCESS", "provision/echo"],
            ["RUNNING", "provision/env-and-mount"], ["SUCCESS", "provision/env-and-mount"],
            ["RUNNING", "provision/fail"], ["FAILED", "provision/fail"],
        ], result.stdout  # fmt: skip
        assert "exit code 3" in result.stdout
        assert result.stdout.splitlines()[-1].startswith("workflow suite: FAILED")
        assert self.leftovers() == []


def _set_when(condition: Callable[[], bool], event: threading.Event, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        if condition():
            break
        time.sleep(0.1)
    event.set()
