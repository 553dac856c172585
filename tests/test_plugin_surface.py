"""What plugin authors see of the framework, through the real ``tinklet`` command: rewrites that
compose, hook implementations that take only the arguments they use, built-in plugins that can
be blocked cleanly, ``plugins list`` telling the truth, and transports that need no server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.plugin_kit import PROCESS, run_on_a_terminal, tinklet, warnings_in, write_module, write_workflow

ROOT = Path(__file__).resolve().parent.parent

MIRROR = """
import dataclasses
from tinklet_core import hookimpl


@hookimpl
def tinklet_rewrite_action(action):
    return dataclasses.replace(action, image="mirror.example/" + action.image)
"""

RETRIES = """
import dataclasses
from tinklet_core import hookimpl


@hookimpl
def tinklet_rewrite_action(action):
    return dataclasses.replace(action, retries=2)
"""

# configure takes no arguments at all; what it returns observes events (and shows in plugins list)
AUDIT = """
import os
from pathlib import Path
from tinklet_core import hookimpl


class Audit:
    @hookimpl
    def tinklet_action_event(self, event):
        with Path(os.environ["AUDIT_FILE"]).open("a") as out:
            out.write(f"{event.state.value} {event.action.name} {event.action.image}\\n")


@hookimpl
def tinklet_configure() -> Audit:
    return Audit()
"""


def test_two_rewrites_both_apply_and_observers_see_the_image_that_ran(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_mirror", MIRROR)
    write_module(site, "tinklet_retries", RETRIES)
    write_module(site, "tinklet_audit", AUDIT)
    attempts = tmp_path / "attempts"
    script = f"echo x >> {attempts}; test $(wc -l < {attempts}) -ge 3"
    action = {"name": "a", "image": "busybox", "command": ["sh", "-c", script]}
    workflow = write_workflow(tmp_path / "wf.yaml", action)
    audit = tmp_path / "audit.log"
    result = tinklet(
        "-p", "tinklet_mirror", "-p", "tinklet_retries", "-p", "tinklet_audit", "-p", PROCESS,
        "--runtime", "process", "run", str(workflow),
        site=site, env={"AUDIT_FILE": str(audit)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "t/a: image rewritten to mirror.example/busybox" in result.stderr
    assert len(attempts.read_text().splitlines()) == 3, "the retries rewrite applied as well as the mirror"
    assert audit.read_text().splitlines() == ["RUNNING a busybox", "SUCCESS a mirror.example/busybox"]


def test_plugins_list_shows_the_hooks_of_what_configure_returns(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_audit", AUDIT)
    listed = tinklet("-p", "tinklet_audit", "plugins", "list", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    plugin = next(p for p in json.loads(listed.stdout)["plugins"] if p["name"] == "tinklet_audit")
    assert plugin["hooks"] == ["tinklet_action_event", "tinklet_configure"]


OPTIONS = """
from tinklet_core import PluginOption, hookimpl


@hookimpl
def tinklet_options():
    return [
        PluginOption("runtime", "clashes with the core's --runtime"),
        PluginOption("site-label", "a label", default=""),
    ]
"""


def test_refused_options_are_not_listed_and_an_empty_default_is_not_shown(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_opts", OPTIONS)
    listed = tinklet("-p", "tinklet_opts", "plugins", "list", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    plugin = next(p for p in report["plugins"] if p["name"] == "tinklet_opts")
    assert plugin["options"] == ["--site-label"]
    assert any("option --runtime is already the core's; ignored" in f for f in report["failures"])
    helped = tinklet("-p", "tinklet_opts", "--help", site=site, env={"COLUMNS": "200"})
    assert "A label." in helped.stdout
    assert "Default: ." not in helped.stdout


LOCAL_QUEUE = """
from tinklet_core import TransportSpec, hookimpl


class Empty:
    def __init__(self, settings):
        self.target = settings.target

    def read(self):
        print(f"target={self.target!r}", flush=True)
        return None

    def write(self, event):
        pass

    @property
    def exhausted(self):
        return True

    def close(self):
        pass


@hookimpl
def tinklet_transports():
    return [TransportSpec("local-queue", Empty, needs_server=False)]
"""


def test_a_transport_that_needs_no_server_is_not_asked_for_tink(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_localq", LOCAL_QUEUE)
    args = ("-p", "tinklet_localq", "-p", PROCESS, "--runtime", "process", "--identifier", "me")
    result = tinklet(*args, "--protocol", "local-queue", site=site)
    assert result.returncode == 0, result.stderr
    assert "target=''" in result.stdout
    needs = tinklet(*args, "--protocol", "v2", site=site)
    assert needs.returncode == 2 and "missing --tink HOST:PORT" in needs.stderr


def test_blocking_the_progress_plugin_on_a_terminal_runs_cleanly() -> None:
    agent = f"surface-{uuid.uuid4().hex[:8]}"  # not `local`, another test's run on the shared dockerd
    code, screen, errors = run_on_a_terminal(
        ["-p", "no:core-progress", "--identifier", agent, "run", "examples/hello.yaml"], cwd=ROOT
    )
    assert code == 0, errors
    assert "WARNING" not in errors and "AssertionError" not in errors, errors
    assert "\x1b[K" not in screen, "without core-progress the lines are plain"
    assert "SUCCESS  provision/say-hello" in screen
    assert "workflow hello: SUCCESS (3 of 3 actions succeeded)" in screen


def test_only_listed_names_can_be_blocked_without_a_warning() -> None:
    result = tinklet("-p", "no:core-progress", "-p", "no:core-registry", "plugins", "list")
    assert result.returncode == 0, result.stderr
    assert warnings_in(result) == []


ALLOW_LIST = """
import json
import os
from tinklet_core import PluginOption, hookimpl


@hookimpl
def tinklet_options():
    return [
        PluginOption("mirror-allow", "registries to mirror", kind=list),
        PluginOption("mirror-prefix", "where the mirror is"),
    ]


@hookimpl
def tinklet_configure(options):
    with open(os.environ["SEEN_FILE"], "w") as out:
        json.dump({key: options[key] for key in sorted(options)}, out)
"""


def seen_options(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[dict[str, object], str]:
    site = tmp_path / "site"
    write_module(site, "tinklet_allow", ALLOW_LIST)
    workflow = write_workflow(tmp_path / "wf.yaml", {"name": "a", "image": "none", "command": ["true"]})
    seen = tmp_path / "seen.json"
    result = tinklet(
        "-p", "tinklet_allow", "-p", PROCESS, "--runtime", "process", "run", str(workflow), *args,
        site=site, env={"SEEN_FILE": str(seen), **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(seen.read_text()), result.stderr


def test_a_list_option_keeps_every_value_from_flags_environment_and_config(tmp_path: Path) -> None:
    flags, _ = seen_options(tmp_path, "--mirror-allow", "docker.io", "--mirror-allow", "quay.io")
    assert flags["mirror_allow"] == ["docker.io", "quay.io"]
    env, _ = seen_options(tmp_path, env={"TINKLET_MIRROR_ALLOW": "docker.io, ghcr.io"})
    assert env["mirror_allow"] == ["docker.io", "ghcr.io"]
    config = tmp_path / "tinklet.yaml"
    config.write_text("mirror-allow:\n  - docker.io\n  - registry.k8s.io\n")
    from_file, _ = seen_options(tmp_path, "--config", str(config))
    assert from_file["mirror_allow"] == ["docker.io", "registry.k8s.io"]
    unset, _ = seen_options(tmp_path)
    assert unset == {"mirror_allow": [], "mirror_prefix": None}


def test_a_single_value_flag_given_twice_keeps_the_last_with_a_warning(tmp_path: Path) -> None:
    seen, stderr = seen_options(
        tmp_path, "--mirror-prefix", "first.example", "--mirror-prefix", "second.example"
    )
    assert seen["mirror_prefix"] == "second.example"
    assert "--mirror-prefix was given 2 times; the last one is used" in stderr
    assert "first.example" not in stderr, "a value is never echoed in a warning"


SETTINGS_PROBE = """
from tinklet_core import Outcome, RuntimeSpec, State, hookimpl


class Probe:
    def __init__(self, settings):
        self.settings = settings

    @hookimpl
    def tinklet_execute_action(self, context):
        same = context.settings is self.settings
        context.output(f"same settings {same}, shared agent {context.settings.shared_agent}")
        return Outcome(State.SUCCESS)

    def close(self):
        pass


@hookimpl
def tinklet_runtimes():
    return [RuntimeSpec("probe", Probe)]
"""


def test_the_runtime_and_its_actions_get_one_settings_record(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_settings_probe", SETTINGS_PROBE)
    workflow = write_workflow(tmp_path / "wf.yaml", {"name": "a", "image": "none"})
    result = tinklet("-p", "tinklet_settings_probe", "--runtime", "probe", "run", str(workflow), site=site)
    assert result.returncode == 0, result.stderr
    assert "t/a | same settings True, shared agent True" in result.stderr
