"""The behaviour suite's worker processes: ``python -m tinklet_core`` against the in-process test
Tink server and against a workflow file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tinklet_core.model import State
from tinklet_core.testing.runtime_suite.base import AGENT, SuiteBase
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow


class WorkerProcessTests(SuiteBase):
    """A real worker process on the runtime (tests inherited by :class:`RuntimeBehaviourSuite`)."""

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
            # the 2 s deadline, not the action's own 30 s: the 8 s beyond it cover creating,
            # killing and removing the container on a loaded machine (the suite runs four test
            # files at a time), and are still far from what a missed deadline would take
            assert elapsed < 2 + 8 + self.startup_allowance(), f"TIMEOUT came {elapsed:.1f}s after RUNNING"
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

    def test_workflow_file_gives_the_same_states(self, tmp_path: Path) -> None:
        path = tmp_path / "workflow.yaml"
        path.write_text(yaml.safe_dump(self.four_action_workflow(tmp_path)))
        plugins = [arg for module in self.plugin_modules() for arg in ("-p", module)]
        command = [
            sys.executable,
            "-m",
            "tinklet_core",
            *plugins,
            # the suite's agent, not ``local``: a ``tinklet run`` elsewhere on the shared engine
            # (another test) is agent ``local`` too, and removes that agent's stopped containers
            "--identifier",
            AGENT,
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
