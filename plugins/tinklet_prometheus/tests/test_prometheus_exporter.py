"""tinklet-prometheus through the real ``tinklet`` command: listed with its options, imports
nothing unless enabled, serves metrics, /healthz and /readyz for a worker on the test Tink server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from prometheus_support import PROCESS, free_port, get, sample, scrape, start_worker, stop_worker, wait_for

from tinklet_core.model import State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

AGENT = "prometheus-exporter-test"
WORKFLOW = {"name": "wf-metrics", "tasks": [{"name": "t", "actions": [
    {"name": "one", "image": "img:1", "command": ["echo", "one"]},
    {"name": "slow", "image": "img:2", "command": ["sleep", "2"]},
    {"name": "broken", "image": "img:3", "command": ["false"]},
]}]}  # fmt: skip


def tinklet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinklet_core", *args], capture_output=True, text=True, timeout=60
    )


def test_plugins_list_shows_the_plugin_with_its_hooks_and_options() -> None:
    report = json.loads(tinklet("plugins", "list", "--json").stdout)
    plugin = next(p for p in report["plugins"] if p["distribution"] == "tinklet-prometheus")
    assert {"tinklet_options", "tinklet_configure"} <= set(plugin["hooks"])
    assert plugin["options"] == ["--metrics-address", "--metrics-health-window"]
    assert any("tinklet-prometheus" in line for line in tinklet("plugins", "list").stdout.splitlines())


IMPORTS_AFTER_RUN = """
import sys
from tinklet_core import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
print("IMPORTED" if "prometheus_client" in sys.modules else "NOT-IMPORTED")
"""


def imports_after_run(tmp_path: Path, *options: str) -> str:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text("name: w\ntasks: [{name: t, actions: [{name: a, image: x, command: [echo, hi]}]}]\n")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(IMPORTS_AFTER_RUN),
         "-p", PROCESS, "--runtime", "process", *options, "run", str(workflow)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "workflow w: SUCCESS" in result.stdout, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_prometheus_client_is_imported_only_when_metrics_are_on(tmp_path: Path) -> None:
    assert imports_after_run(tmp_path, "-p", "no:prometheus") == "NOT-IMPORTED"  # as if not installed
    assert imports_after_run(tmp_path) == "NOT-IMPORTED"  # installed, not enabled
    port = free_port()
    assert imports_after_run(tmp_path, "--metrics-address", f"127.0.0.1:{port}") == "IMPORTED"


def test_a_bad_metrics_address_is_one_line_without_its_value(tmp_path: Path) -> None:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text("name: w\ntasks: [{name: t, actions: [{name: a, image: x, command: [echo]}]}]\n")
    bad = ("--metrics-address", "nonsense-x9")
    result = tinklet("-p", PROCESS, "--runtime", "process", *bad, "run", str(workflow))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tinklet: error: ") and "--metrics-address must be HOST:PORT" in last
    assert "nonsense-x9" not in result.stderr


def test_metrics_health_and_readiness_follow_the_worker_and_the_server() -> None:
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    started = time.time()
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT) as server:
        server.refuse_reports(1)  # one's SUCCESS is refused once: a report retry
        address = server.address
        worker = start_worker(address, AGENT, metrics_port)
        try:
            running = wait_for(
                lambda: sample(scrape(base), "tinklet_current_action_info", action="t/slow") == 1, timeout=20
            )
            assert running, "the running action shows as an info metric"
            assert server.wait_until(lambda: State.FAILED in server.states_of("t/broken"), timeout=20)
            labels = {"runtime": "process", "protocol": "v2"}

            failed = {"state": "FAILED", **labels}
            assert wait_for(lambda: sample(scrape(base), "tinklet_actions_total", **failed) == 1, timeout=5)
            metrics = scrape(base)
            success = {"state": "SUCCESS", **labels}
            assert sample(metrics, "tinklet_actions_total", state="SUCCESS", **labels) == 2
            assert sample(metrics, "tinklet_actions_total", state="TIMEOUT", **labels) == 0
            assert sample(metrics, "tinklet_action_duration_seconds_count", **success) == 2
            assert (sample(metrics, "tinklet_action_duration_seconds_sum", **success) or 0) >= 2
            assert sample(metrics, "tinklet_report_retries_total", **success) == 1
            pulled = {"result": "success", **labels}
            assert sample(metrics, "tinklet_image_pull_duration_seconds_count", **pulled) == 3
            assert (sample(metrics, "tinklet_image_pull_duration_seconds_sum", **pulled) or 0) >= 0.6
            contact = sample(metrics, "tinklet_last_server_contact_timestamp_seconds", **labels)
            assert (contact or 0) >= started
            assert sample(metrics, "tinklet_worker_up", **labels) == 1
            assert sample(metrics, "tinklet_current_action_info") is None, "no action runs now"
            assert get(f"{base}/healthz")[0] == 200
            assert get(f"{base}/readyz")[0] == 200
            assert get(f"{base}/nothing")[0] == 404
        except BaseException:
            print(stop_worker(worker)[1])
            raise
    try:
        # the server is down: not ready, but alive (the loop keeps asking)
        assert wait_for(lambda: get(f"{base}/readyz")[0] == 503, timeout=10), get(f"{base}/readyz")
        assert "tink server not answering" in get(f"{base}/readyz")[1]
        assert get(f"{base}/healthz")[0] == 200
        port = int(address.rsplit(":", 1)[1])
        with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT, port=port):
            assert wait_for(lambda: get(f"{base}/readyz")[0] == 200, timeout=15), get(f"{base}/readyz")
            assert get(f"{base}/healthz")[0] == 200
            code, output = stop_worker(worker)
    finally:
        stop_worker(worker)
    assert code == 0, output
    assert f"serving metrics on http://127.0.0.1:{metrics_port}/metrics" in output
    assert get(f"{base}/metrics")[0] == 0, "the endpoint closes with tinklet"


def test_a_server_that_holds_get_action_makes_the_worker_unhealthy_until_it_answers() -> None:
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    workflow = {"name": "wf-held", "tasks": [{"name": "t", "actions": [
        {"name": "a", "image": "img:1", "command": ["sleep", "3"]},
    ]}]}  # fmt: skip
    with TinkServer([parse_workflow(workflow, agent_id=AGENT)], AGENT, get_action_delay=4.0) as server:
        worker = start_worker(server.address, AGENT, metrics_port, "--metrics-health-window", "1")
        try:
            # the first GetAction is held for 4 s: after the 1 s window the loop counts as stuck
            assert wait_for(lambda: get(f"{base}/healthz")[0] == 503, timeout=10), get(f"{base}/healthz")
            assert "has not turned" in get(f"{base}/healthz")[1]
            assert get(f"{base}/readyz")[0] == 503
            # the answer comes, the action runs: healthy and ready again
            assert wait_for(lambda: get(f"{base}/healthz")[0] == 200, timeout=10), get(f"{base}/healthz")
            assert get(f"{base}/readyz")[0] == 200, get(f"{base}/readyz")
        finally:
            code, output = stop_worker(worker)
    assert code == 0, output


def test_metrics_addresses_in_their_forms() -> None:
    from tinklet_prometheus.address import parse_address

    assert parse_address("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_address("[::1]:9464") == ("::1", 9464)
    assert parse_address(":9464") == ("0.0.0.0", 9464)
    for wrong in ("7002", "host:", "host:port", "::1:7001", "h:70000"):
        try:
            parse_address(wrong)
        except ValueError as exc:
            assert wrong not in str(exc)
        else:
            raise AssertionError(f"{wrong!r} was accepted")
