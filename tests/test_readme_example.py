"""The README's worked plugin example is real code: extracted and run as a plugin here."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path

from tests.plugin_kit import tinklet, write_module, write_workflow
from tests.test_extension_points import PROBE, probe_lines

README = Path(__file__).parent.parent / "docs" / "plugins.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Worked example") :]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_worked_example_mirrors_refuses_times_and_serves_metrics(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_site_policy", readme_example())
    write_module(site, "tinklet_probe", PROBE)
    plugins = ["-p", "tinklet_site_policy", "-p", "tinklet_probe"]
    helped = tinklet(*plugins, "--help", site=site, env={"COLUMNS": "200"})
    panel = helped.stdout[helped.stdout.index("Plugin tinklet_site_policy") :].split("╰")[0]
    assert "--site-metrics-address" in panel and "--allowed-registries" in panel
    port = free_port()
    scraped: list[str] = []

    def scrape() -> None:  # while tinklet runs, its metrics endpoint answers
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
                    body = response.read().decode()
                if body:
                    scraped.append(body)
                    return
            except OSError:
                pass
            time.sleep(0.05)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    workflow = write_workflow(
        tmp_path / "wf.yaml",
        {"name": "hub", "image": "docker.io/library/alpine:3", "command": ["sleep", "2"]},
        {"name": "other", "image": "quay.io/x/y:1"},
    )
    result = tinklet(
        *plugins, "--runtime", "probe", "run", str(workflow),
        "--site-metrics-address", f"127.0.0.1:{port}", "--allowed-registries", "mirror.example:5000",
        site=site,
    )  # fmt: skip
    scraper.join()
    assert result.returncode == 1, result.stderr
    assert probe_lines(result.stderr, "image") == ["image mirror.example:5000/library/alpine:3"]
    assert "t/hub took " in result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("SUCCESS  t/hub")
    assert lines[3].endswith("refused: registry quay.io is not in --allowed-registries")
    assert scraped and scraped[0].startswith("tinklet_action_events_total"), scraped
