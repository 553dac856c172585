"""A real Prometheus (Debian's ``prometheus``) scrapes a worker and answers queries about it."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_support import free_port, get, start_worker, stop_worker, wait_for

from tinklet_core.model import State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

AGENT = "prometheus-real-test"
WORKFLOW = {"name": "wf-prom", "tasks": [{"name": "t", "actions": [
    {"name": "a", "image": "img:1", "command": ["echo", "a"]},
    {"name": "b", "image": "img:1", "command": ["echo", "b"]},
    {"name": "c", "image": "img:1", "command": ["false"]},
]}]}  # fmt: skip
README_QUERIES = (
    "sum by (state) (increase(tinklet_actions_total[1h]))",
    "histogram_quantile(0.95, sum by (le, runtime) (rate(tinklet_action_duration_seconds_bucket[15m])))",
    "time() - tinklet_last_server_contact_timestamp_seconds > 300",
)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Prometheus on a loopback port scraping a loopback port every second: ``(api, target)``."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus package is not installed (scripts/setup installs it)")
    target = free_port()
    listen = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: tinklet\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
    )
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{listen}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = f"http://127.0.0.1:{listen}"
    try:
        ready = wait_for(lambda: get(f"{api}/-/ready")[0] == 200, timeout=30, step=0.2)
        assert ready, (tmp_path / "prometheus.log").read_text()[-2000:]
        yield api, target
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def query(api: str, promql: str) -> list[dict[str, object]]:
    status, body = get(f"{api}/api/v1/query?query={urllib.parse.quote(promql)}")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def counts_by_state(api: str) -> dict[str, float]:
    selector = 'tinklet_actions_total{job="tinklet", runtime="process", protocol="v2"}'
    rows = query(api, f"sum by (state) ({selector})")
    return {str(row["metric"]["state"]): float(row["value"][1]) for row in rows}  # type: ignore[index]


def test_prometheus_scrapes_the_action_counts(prometheus: tuple[str, int]) -> None:
    api, target = prometheus
    with TinkServer([parse_workflow(WORKFLOW, agent_id=AGENT)], AGENT) as server:
        worker = start_worker(server.address, AGENT, target)
        try:
            assert server.wait_until(lambda: State.FAILED in server.states_of("t/c"), timeout=30)
            wanted = {"SUCCESS": 2.0, "FAILED": 1.0, "TIMEOUT": 0.0}
            scraped = wait_for(lambda: counts_by_state(api) == wanted, timeout=30, step=0.5)
            assert scraped, counts_by_state(api)
            up = query(api, 'up{job="tinklet"}')
            assert [float(row["value"][1]) for row in up] == [1.0]  # type: ignore[index]
            pulls = query(api, "sum(tinklet_image_pull_duration_seconds_count)")
            assert float(pulls[0]["value"][1]) == 3.0  # type: ignore[index]
            for promql in README_QUERIES:  # the README's queries are valid PromQL on these metrics
                query(api, promql)
        finally:
            code, output = stop_worker(worker)
    assert code == 0, output
