"""``tinklet --help`` as an operator reads it on an 80-column terminal: grouped, nothing cut,
defaults as a person writes them, the Go tinklet's commands apart."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tinklet_core.cli import CORE_PANELS, option_specs
from tinklet_core.config import CORE_OPTIONS
from tinklet_core.plugins import load_plugins


def help_of(*args: str, columns: int = 80) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tinklet_core", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def panels(text: str) -> dict[str, str]:
    """Panel title -> the panel's text."""
    found: dict[str, str] = {}
    for match in re.finditer(r"╭─ (.+?) ─+╮\n(.*?)╰", text, re.S):
        found[match[1]] = found.get(match[1], "") + match[2]
    return found


def every_spec() -> list:
    core, plugin_specs, _ = option_specs(load_plugins())
    return [*core, *plugin_specs]


@pytest.mark.parametrize("columns", [80, 60])
def test_no_flag_or_variable_name_is_cut_and_no_line_is_wider_than_the_terminal(columns: int) -> None:
    text = help_of(columns=columns)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= columns
    words = set(re.findall(r"[\w-]+", text))
    for spec in every_spec():
        for name in (spec.name, *spec.aliases):
            assert f"--{name}" in words, f"--{name} is not shown whole"
        for variable in spec.env_names:
            assert variable in words, f"{variable} is not shown whole"


def test_core_options_are_grouped_by_what_they_are_about() -> None:
    assert {spec.name for spec in CORE_OPTIONS} <= set(CORE_PANELS), "a core option has no --help panel"
    shown = panels(help_of())
    expected = {
        "Tink server": ["--tink", "--identifier", "--protocol", "--max-backoff"],
        "TLS to the Tink server": ["--tls ", "--tls-ca", "--tls-cert", "--tls-key", "--tls-insecure"],
        "Images and registry logins": ["--registry ", "--registry-file", "--docker-config", "--pull"],
        "Actions": ["--runtime", "--action-privilege", "--action-output", "--state-dir"],
        "Logging": ["--loglevel", "--log-format"],
        "Proxy": ["--http-proxy", "--https-proxy", "--no-proxy"],
    }
    for title, flags in expected.items():
        assert title in shown, f"no panel {title!r} in {list(shown)}"
        for flag in flags:
            assert flag in shown[title], f"{flag} is not in the {title!r} panel"
    docker = "Runtime docker (tinklet-docker)"
    assert docker in shown and "--docker-host" in shown[docker]


def test_defaults_read_as_a_person_writes_them() -> None:
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", help_of(columns=120)).split())
    assert "Default: 5." in text  # --max-backoff, a float 5.0
    assert "Default: 3." in text  # --report-grace
    assert "Default: on." in text  # --agent-attributes
    machine_forms = ("Default: True", "Default: False", ".0.", "Default: 5.0", "Default: 300.0", "()")
    for machine in machine_forms:
        assert machine not in text, machine


def test_the_go_compatibility_commands_have_their_own_group() -> None:
    shown = panels(help_of())
    go = next(text for title, text in shown.items() if title.startswith("Go tinklet compatibility"))
    for runtime in ("docker", "podman", "kube"):
        assert re.search(rf"^│ {runtime} ", go, re.M), f"{runtime} is not in the Go compatibility group"
    commands = shown["Commands"]
    assert re.search(r"^│ run ", commands, re.M) and re.search(r"^│ plugins ", commands, re.M)
    assert not re.search(r"^│ docker ", commands, re.M)


def test_tinklet_docker_help_does_not_offer_runtime() -> None:
    text = help_of("docker")
    assert not re.search(r"--runtime\b(?! docker\))", text), "tinklet docker --help offers --runtime"
    assert "--tink " in text and "--docker-host" in text


def test_run_help_lists_its_argument_and_the_common_options() -> None:
    shown = panels(help_of("run"))
    assert "WORKFLOW" in shown["Arguments"]
    assert "--runtime" in shown["Actions"]
    assert "Tink server" not in shown or "--tink " not in shown["Tink server"]  # worker-only options
