"""The README is short and points into the documentation site; the site's pages do not repeat
the wrong facts issue 23 found."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_the_readme_is_at_most_200_lines_and_has_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert "bash scripts/setup && .venv/bin/tinklet run examples/hello.yaml" in text
    assert "bash scripts/setup && .venv/bin/python -m pytest" in text


def test_every_relative_link_in_the_readme_exists_and_every_page_is_linked() -> None:
    text = README.read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local, "the README links no page"
    for link in local:
        assert (ROOT / link).exists(), f"README links {link}, which does not exist"
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(entries: object) -> list[str]:
        if isinstance(entries, str):
            return [entries]
        if isinstance(entries, list):
            return [page for entry in entries for page in pages(entry)]
        if isinstance(entries, dict):
            return [page for value in entries.values() for page in pages(value)]
        return []

    for page in pages(nav):
        assert f"docs/{page}" in local, f"docs/{page} is not linked from the README"


def test_the_wrong_facts_are_gone() -> None:
    texts = {path: path.read_text() for path in [README, *(ROOT / "docs").rglob("*.md")]}
    for path, text in texts.items():
        assert "PROTOCOL.md" not in text, f"{path} names PROTOCOL.md, which the repository has not"
        assert "`--kube-namespace` (default `default`)" not in text, path
        assert "core-v2 and core-file" not in text, path
    configuration = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    assert "`docker_host:` and `docker-host:`" in configuration
    assert "`http-proxy:` and `http_proxy:`" in configuration


def test_the_monitoring_pages_queries_are_the_ones_run_against_prometheus() -> None:
    """plugins/tinklet_prometheus/tests/test_prometheus_real_server.py runs its queries on a real
    Prometheus; the page shows exactly those."""
    tests = ROOT / "plugins" / "tinklet_prometheus" / "tests"
    tested = (tests / "test_prometheus_real_server.py").read_text()
    constant = tested[tested.index("README_QUERIES = (") :].split(")\n", 1)[0]
    queries = re.findall(r'^\s+"(.+)",$', constant, re.M)
    page = (ROOT / "docs" / "monitoring.md").read_text()
    block = page.split("```promql\n", 1)[1].split("```", 1)[0]
    shown = [line.split("   #")[0].split("     #")[0].strip() for line in block.splitlines()]
    assert len(queries) == 3 and shown == queries
