"""docs/migrating.md is right: each variable its table names sets the option it says, and the
page's hook-bootkit environment gives the same settings as its translation into TINKLET_*."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from tinklet_core.cli import option_specs
from tinklet_core.config import Settings, load_settings
from tinklet_core.plugins import load_plugins

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "migrating.md"
VALUES = {
    "tink": "tink.example:42113",
    "identifier": "00:50:56:aa:bb:cc",
    "tls": "true",
    "tls-insecure": "true",
    "runtime": "podman",
    "loglevel": "debug",
    "max-backoff": "7",
    "agent-attributes": "false",
    "http-proxy": "http://proxy.example:3128",
    "https-proxy": "http://proxy.example:3128",
    "no-proxy": "localhost,10.0.0.0/8",
    "containerd-socket": "/run/elsewhere/containerd.sock",
    "containerd-namespace": "provisioning",
}


def table_rows() -> list[tuple[list[str], list[tuple[str, str]]]]:
    """``(their variables, [(option, TINKLET variable)])`` for each row that names both."""
    rows = []
    for line in PAGE.read_text().splitlines():
        cells = line.split("|")
        if len(cells) < 4 or not cells[1].strip().startswith("`"):
            continue
        theirs = [name for name in re.findall(r"`([A-Z][A-Z_]+)`", cells[1]) if not name.endswith("_")]
        ours = re.findall(r"`--([\w-]+)` · `(TINKLET_\w+)`", cells[2])
        if theirs and ours:
            rows.append((theirs, ours))
    return rows


def settings(environ: dict[str, str]) -> Settings:
    core, plugin_specs, _ = option_specs(load_plugins())
    return dataclasses.replace(load_settings({}, plugin_specs, environ=environ, core=core), warnings=())


def test_the_table_covers_hook_bootkit_and_the_tink_agent() -> None:
    named = {name for theirs, _ in table_rows() for name in theirs}
    for variable in ("TINKERBELL_GRPC_AUTHORITY", "WORKER_ID", "ID", "TINKERBELL_TLS", "AGENT_GRPC_SERVER",
                     "AGENT_ID", "AGENT_RUNTIME", "HTTP_PROXY", "AGENT_CONTAINERD_SOCKET"):  # fmt: skip
        assert variable in named, f"{variable} is not in the table"
    page = PAGE.read_text()
    for variable in ("DOCKER_REGISTRY", "REGISTRY_USERNAME", "REGISTRY_PASSWORD"):
        assert f"`{variable}`" in page, variable
    not_read = page[page.index("## What is not taken") :]
    assert "`TINKERBELL_CERT_URL`" in not_read and "TINKLET_TLS_CA=http" in not_read


@pytest.mark.parametrize("theirs, ours", table_rows(), ids=lambda value: str(value)[:40])
def test_each_variable_sets_the_option_the_table_names(
    theirs: list[str], ours: list[tuple[str, str]]
) -> None:
    pairs = list(zip(theirs, ours, strict=True)) if len(ours) > 1 else [(name, ours[0]) for name in theirs]
    for variable, (option, tinklet_variable) in pairs:
        value = VALUES[option]
        expected = settings({tinklet_variable: value})
        assert expected != settings({}), f"{tinklet_variable}={value} changes nothing: a useless check"
        assert settings({variable: value}) == expected, f"{variable} does not set --{option}"


def env_block(after: str) -> dict[str, str]:
    text = PAGE.read_text()
    block = text[text.index(after) :].split("```sh\n", 1)[1].split("```", 1)[0]
    return dict(line.split("#")[0].strip().split("=", 1) for line in block.splitlines() if "=" in line)


def test_the_translated_environment_gives_the_same_settings(tmp_path: Path) -> None:
    hook = env_block("A hook-bootkit environment")
    translated = env_block("The same in tinklet's own terms")
    text = PAGE.read_text()
    login_line = text[text.index("TINKLET_REGISTRY_FILE=") :].split("\n", 1)[0].split("#", 1)[1]
    logins = tmp_path / "registries.yaml"
    logins.write_text(login_line.strip() + "\n")
    logins.chmod(0o600)
    translated["TINKLET_REGISTRY_FILE"] = str(logins)
    theirs, ours = settings(hook), settings(translated)
    def basics(found: Settings) -> tuple[object, ...]:
        return (found.tink, found.identifier, found.tls.enabled)

    assert basics(theirs) == basics(ours)
    assert theirs.tink == "tink.example:42113" and theirs.tls.enabled

    def logins_of(found: Settings) -> list[tuple[str, str, str]]:
        return [(r.registry, r.username, r.password) for r in found.registries]

    assert logins_of(theirs) == logins_of(ours) == [("registry.example:5000", "provisioner", "secret")]
    assert yaml.safe_load(logins.read_text())
